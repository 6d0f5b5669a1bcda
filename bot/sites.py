"""Seeding the list of mines and enterprises from `bot/data/sites.json`."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from bot.config import LOCALES
from storage.sites import SiteRepository

SITE_KINDS = {"underground", "open-pit", "processing"}


class SeedError(ValueError):
    pass


def load_seed(text: str | None = None) -> list[dict[str, Any]]:
    """The regions of the seed file, checked: every name in every language, unique codes."""
    if text is None:
        text = resources.files("bot.data").joinpath("sites.json").read_text(encoding="utf-8")
    regions = json.loads(text)["regions"]
    seen_regions: set[str] = set()
    seen_sites: set[str] = set()
    for region in regions:
        _check_names(region)
        if region["code"] in seen_regions:
            raise SeedError(f"region code {region['code']!r} appears twice")
        seen_regions.add(region["code"])
        for site in region["sites"]:
            _check_names(site)
            if site["code"] in seen_sites:
                raise SeedError(f"site code {site['code']!r} appears twice")
            if site.get("kind") not in SITE_KINDS:
                raise SeedError(f"site {site['code']!r} has kind {site.get('kind')!r}")
            seen_sites.add(site["code"])
    return regions


def _check_names(entry: dict[str, Any]) -> None:
    code = entry.get("code")
    if not code or len(code) > 24 or not code.replace("-", "").isalnum() or not code.isascii():
        raise SeedError(f"bad code {code!r}")
    names = entry.get("name", {})
    for language in LOCALES:
        if not names.get(language, "").strip():
            raise SeedError(f"{code!r} has no {language} name")


async def seed_sites(sites: SiteRepository, regions: list[dict[str, Any]] | None = None) -> None:
    """Idempotent: run at every start; adds what is missing and keeps what admins changed."""
    for region_position, region in enumerate(regions if regions is not None else load_seed()):
        await sites.upsert_region(region["code"], region_position, region["name"])
        for site_position, site in enumerate(region["sites"]):
            await sites.insert_site_if_missing(
                site["code"], region["code"], site_position, site["kind"], site.get("operator") or None, site["name"]
            )


class SiteAdmin:
    """Admins add, rename and archive mines; archived ones vanish from the report flow but keep their cases."""

    def __init__(self, sites: SiteRepository, access) -> None:
        self._sites = sites
        self._access = access

    def _check(self, user_id: int) -> None:
        from bot.access import NotAllowed

        if not self._access.is_admin(user_id):
            raise NotAllowed

    async def add(self, user_id: int, region_code: str, names: dict[str, str]) -> int:
        self._check(user_id)
        base = "".join(ch if ch.isalnum() else "-" for ch in names["en"].lower() if ch.isascii()).strip("-")[:20] or "site"
        code, number = base, 1
        while await self._sites.code_taken(code):
            number += 1
            code = f"{base[:20]}-{number}"
        return await self._sites.add_site(code, region_code, "underground", names)

    async def rename(self, user_id: int, site_id: int, names: dict[str, str]) -> None:
        self._check(user_id)
        await self._sites.rename(site_id, names)

    async def archive(self, user_id: int, site_id: int, archived: bool) -> None:
        self._check(user_id)
        await self._sites.set_archived(site_id, archived)


def parse_names(text: str) -> dict[str, str] | None:
    """"Қазақша | Русский | English" → names per language; None unless all three are there."""
    parts = [part.strip() for part in text.split("|")]
    if len(parts) != len(LOCALES) or not all(parts) or any(len(part) > 40 for part in parts):
        return None
    return dict(zip(LOCALES, parts, strict=True))
