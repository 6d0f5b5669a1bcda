"""aiogram routers, one module per user flow. Order matters: see `all_routers`."""

from aiogram import Router


def all_routers() -> list[Router]:
    from handlers import (admin, announce, cancel, cases, fallback, language, profile, report, start, status, survey,
                          survey_admin)

    # /cancel first (it works in any state), then the buttons under announcements and survey
    # invitations (they work in any state too), the catch-all fallback last.
    return [cancel.router, announce.router, survey.router, survey_admin.router, report.router, status.router,
            language.router, start.router, profile.router, admin.router, cases.router, fallback.router]
