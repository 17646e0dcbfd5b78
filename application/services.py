"""The service catalogue: names for the service ids other services send us."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from application.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class NameService:
    service_id: int
    name: str


async def name_service(cmd: NameService, units: Callable[[], UnitOfWork]) -> NameService:
    async with units() as uow:
        await uow.services.name(cmd.service_id, cmd.name)
        await uow.commit()
    return cmd


async def list_services(units: Callable[[], UnitOfWork]) -> list[NameService]:
    async with units() as uow:
        return [NameService(sid, name) for sid, name in await uow.services.all()]
