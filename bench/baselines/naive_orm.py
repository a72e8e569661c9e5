"""The naive baseline: a tutorial-style FastAPI endpoint, one ORM `session.get` per request.

    CERTCHECK_DATABASE_URL=postgresql+asyncpg://... \
        python -m uvicorn bench.baselines.naive_orm:app --loop uvloop --http httptools

Deliberately not optimised: a session per request from a dependency, the ORM's identity map,
no cache, pydantic models in and out. It reads the same `certificates` table as certcheck, so
the cold (uncached) verify figures are compared with it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy import JSON, Date, String, Text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Certificate(Base):
    __tablename__ = "certificates"

    cert_no: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(Text)
    product_code: Mapped[str] = mapped_column(String(4))
    models: Mapped[list[str]] = mapped_column(JSON)
    expires_on: Mapped[date | None] = mapped_column(Date)


class VerifyIn(BaseModel):
    cert_no: str | None = None
    model: str | None = None


class VerifyOut(BaseModel):
    cert_no: str | None
    decision: str
    reason: str
    certificate: dict[str, Any] | None


engine = create_async_engine(os.environ["CERTCHECK_DATABASE_URL"])
Session = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


@app.post("/v1/verify")
async def verify(
    body: VerifyIn, session: Annotated[AsyncSession, Depends(get_session)]
) -> VerifyOut:
    cert = await session.get(Certificate, body.cert_no) if body.cert_no else None
    if cert is None:
        return VerifyOut(
            cert_no=body.cert_no, decision="block", reason="NOT_FOUND", certificate=None
        )
    ok = cert.status == "valid" and (body.model is None or body.model in cert.models)
    return VerifyOut(
        cert_no=cert.cert_no,
        decision="allow" if ok else "block",
        reason="VALID" if ok else "NOT_VALID",
        certificate={"status": cert.status, "holder": cert.holder, "models": cert.models},
    )
