"""aiogram routers, one module per user flow. Order matters: see `all_routers`."""

from aiogram import Router


def all_routers() -> list[Router]:
    from handlers import admin, cancel, cases, fallback, language, profile, report, start, status

    # /cancel first (it works in any state), the catch-all fallback last.
    return [cancel.router, report.router, status.router, language.router, start.router, profile.router, admin.router,
            cases.router, fallback.router]
