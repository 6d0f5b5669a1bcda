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
    archived: bool = False

    def name(self, language: str) -> str:
        return self.names[language]


def _names(row) -> dict[str, str]:
    return {"kk": row["name_kk"], "ru": row["name_ru"], "en": row["name_en"]}


class SiteRepository:
    """Sites change only through this repository (seeding, admins), so it keeps them in memory:
    every step of the report flow shows a list of them."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._regions: list[Region] | None = None
        self._region_by_code: dict[str, Region] = {}
        self._sites_by_region: dict[str, list[Site]] = {}
        self._site_by_id: dict[int, Site] = {}

    async def _load(self) -> None:
        if self._regions is not None:
            return
        region_rows = await self._db.fetchall("SELECT * FROM regions ORDER BY position")
        site_rows = await self._db.fetchall("SELECT * FROM sites ORDER BY region_code, position")
        sites = [Site(row["id"], row["code"], row["region_code"], _names(row), bool(row["archived"])) for row in site_rows]
        active = {row["id"] for row in site_rows if not row["archived"]}
        self._site_by_id = {site.id: site for site in sites}
        self._sites_by_region = {}
        for site in sites:
            if site.id in active:
                self._sites_by_region.setdefault(site.region_code, []).append(site)
        self._region_by_code = {row["code"]: Region(row["code"], _names(row)) for row in region_rows}
        self._regions = [region for region in self._region_by_code.values() if self._sites_by_region.get(region.code)]

    def _forget(self) -> None:
        self._regions = None

    async def upsert_region(self, code: str, position: int, names: dict[str, str]) -> None:
        await self._db.execute(
            "INSERT INTO regions (code, position, name_kk, name_ru, name_en) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (code) DO UPDATE SET position = excluded.position, name_kk = excluded.name_kk, "
            "name_ru = excluded.name_ru, name_en = excluded.name_en",
            (code, position, names["kk"], names["ru"], names["en"]),
        )
        self._forget()

    async def insert_site_if_missing(
        self, code: str, region_code: str, position: int, kind: str, operator: str | None, names: dict[str, str]
    ) -> None:
        # Only missing sites are added: names an admin has since edited are kept.
        await self._db.execute(
            "INSERT INTO sites (code, region_code, position, kind, operator, name_kk, name_ru, name_en) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
            (code, region_code, position, kind, operator, names["kk"], names["ru"], names["en"]),
        )
        self._forget()

    async def add_site(self, code: str, region_code: str, kind: str, names: dict[str, str]) -> int:
        position = (await self._db.fetchone(
            "SELECT coalesce(max(position), -1) + 1 FROM sites WHERE region_code = ?", (region_code,)))[0]
        site_id = await self._db.execute(
            "INSERT INTO sites (code, region_code, position, kind, name_kk, name_ru, name_en) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (code, region_code, position, kind, names["kk"], names["ru"], names["en"]),
        )
        self._forget()
        return site_id

    async def rename(self, site_id: int, names: dict[str, str]) -> None:
        await self._db.execute("UPDATE sites SET name_kk = ?, name_ru = ?, name_en = ? WHERE id = ?",
                               (names["kk"], names["ru"], names["en"], site_id))
        self._forget()

    async def set_archived(self, site_id: int, archived: bool) -> None:
        await self._db.execute("UPDATE sites SET archived = ? WHERE id = ?", (int(archived), site_id))
        self._forget()

    async def code_taken(self, code: str) -> bool:
        return await self._db.fetchone("SELECT 1 FROM sites WHERE code = ?", (code,)) is not None

    async def all_regions(self) -> list[Region]:
        """Every region, also those whose sites are all archived (for admins)."""
        await self._load()
        return list(self._region_by_code.values())

    async def every_site_in(self, region_code: str) -> list[Site]:
        """Archived ones too (for admins)."""
        await self._load()
        return [site for site in self._site_by_id.values() if site.region_code == region_code]

    async def regions(self) -> list[Region]:
        """Regions that have at least one site in use, in seed order."""
        await self._load()
        return list(self._regions)

    async def region(self, code: str) -> Region | None:
        await self._load()
        return self._region_by_code.get(code)

    async def sites_in(self, region_code: str) -> list[Site]:
        await self._load()
        return list(self._sites_by_region.get(region_code, ()))

    async def get(self, site_id: int) -> Site | None:
        """Archived sites too: old reports still name them."""
        await self._load()
        return self._site_by_id.get(site_id)
