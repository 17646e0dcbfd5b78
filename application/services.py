"""The service catalogue: names for the service ids other services send us."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class NameService:
    service_id: int
    name: str


async def name_service(cmd: NameService, uow: UnitOfWork) -> NameService:
    async with uow:
        await uow.services.name(cmd.service_id, cmd.name)
        await uow.commit()
    return cmd


async def list_services(uow: UnitOfWork) -> list[NameService]:
    async with uow:
        return [NameService(sid, name) for sid, name in await uow.services.all()]
