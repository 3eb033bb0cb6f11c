"""KP certificates: fields, status and proof."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.provenance import certificate_view
from kpledger.api.schemas import CertificateOut
from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.schema import LOCAL_ID

__all__ = ["router"]

router = APIRouter(prefix="/v1/certificates", tags=["provenance"])


@router.get(
    "/{number}",
    response_model=CertificateOut,
    response_model_exclude_none=True,
    summary="A KP certificate with its status and inclusion proof",
)
async def get_certificate(
    number: str, node: NodeDep, who: Annotated[Caller, Depends(caller)]
) -> CertificateOut:
    """Status is issued, confirmed, discrepancy, voided, refused, or expired (issued, unconfirmed,
    past its expiry). The proof ties the issue record to the issuer's signed checkpoint;
    the public gets the hashes without the record's commercial fields."""
    if LOCAL_ID.match(number) is None:
        raise InvalidData("not a certificate number (ISSUER-...)", field="number")

    def work() -> CertificateOut:
        cert = node.store.certificate(number)
        if cert is None:
            raise HTTPException(404, f"no certificate {number}")
        view = certificate_view(node.store, cert, who, node.chain)
        view.code = CertificateCode(
            node.config.public_base, node.registry.network_id, number, cert.issue_ref.hash
        ).url()
        return view

    return await asyncio.to_thread(work)
