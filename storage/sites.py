"""Regions and the mines and enterprises in them."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    names: dict[str, str]

    def name(self, language: str) -> str:
        return self.names[language]


@dataclass(frozen=True, slots=True)
class Site:
    id: int
    code: str
    region_code: str
    names: dict[str, str]

    def name(self, language: str) -> str:
        return self.names[language]


def _names(row) -> dict[str, str]:
    return {"kk": row["name_kk"], "ru": row["name_ru"], "en": row["name_en"]}


class SiteRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_region(self, code: str, position: int, names: dict[str, str]) -> None:
        await self._db.execute(
            "INSERT INTO regions (code, position, name_kk, name_ru, name_en) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (code) DO UPDATE SET position = excluded.position, name_kk = excluded.name_kk, "
            "name_ru = excluded.name_ru, name_en = excluded.name_en",
            (code, position, names["kk"], names["ru"], names["en"]),
        )

    async def insert_site_if_missing(
        self, code: str, region_code: str, position: int, kind: str, operator: str | None, names: dict[str, str]
    ) -> None:
        # Only missing sites are added: names an admin has since edited are kept.
        await self._db.execute(
            "INSERT INTO sites (code, region_code, position, kind, operator, name_kk, name_ru, name_en) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
            (code, region_code, position, kind, operator, names["kk"], names["ru"], names["en"]),
        )

    async def regions(self) -> list[Region]:
        rows = await self._db.fetchall(
            "SELECT * FROM regions r WHERE EXISTS "
            "(SELECT 1 FROM sites s WHERE s.region_code = r.code AND NOT s.archived) ORDER BY position"
        )
        return [Region(row["code"], _names(row)) for row in rows]

    async def region(self, code: str) -> Region | None:
        row = await self._db.fetchone("SELECT * FROM regions WHERE code = ?", (code,))
        return Region(row["code"], _names(row)) if row else None

    async def sites_in(self, region_code: str) -> list[Site]:
        rows = await self._db.fetchall(
            "SELECT * FROM sites WHERE region_code = ? AND NOT archived ORDER BY position", (region_code,)
        )
        return [Site(row["id"], row["code"], row["region_code"], _names(row)) for row in rows]

    async def get(self, site_id: int) -> Site | None:
        row = await self._db.fetchone("SELECT * FROM sites WHERE id = ?", (site_id,))
        return Site(row["id"], row["code"], row["region_code"], _names(row)) if row else None
