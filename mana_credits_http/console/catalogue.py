"""The console's catalogue pages: the credit packages (list, add, edit, take off or
put back on sale, each audited through `ConsoleCatalogue`) and a gift looked up by
its code (`GiftsService.lookup`, as `mana-credits gifts show`)."""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from mana_credits_core.errors import CreditsError, GiftNotFound, InvalidInput, PackageNotFound
from mana_credits_core.gifts import MAX_CODE_INPUT, normalise_code

from ..keys import SERVICES
from .pages import whole_number
from .session import check_csrf
from .signin import BAD_FORM
from .views import refused, render, signed_in

FIELDS = ("key", "reason", "name", "description", "credits", "price", "sort_order", "same_name")
DONE = {
    "added": "Package added.",
    "edited": "Package changed.",
    "deactivated": "Package taken off sale.",
    "activated": "Package back on sale.",
    "unchanged": "Nothing changed: the package was so already.",
}
# ASCII digits only (int() takes others too); the use case says which bound applies.
_SIGNED = re.compile(r"-?[0-9]{1,18}")


def blank_form() -> dict[str, str]:
    """An empty package form with a fresh idempotency key."""
    return dict.fromkeys(FIELDS, "") | {"key": secrets.token_urlsafe(16)}


async def posted_form(request: web.Request) -> dict[str, str] | None:
    """The posted package form (stripped), None when its CSRF token is not the session's."""
    posted = await request.post()
    if not await check_csrf(request, posted):
        return None
    return {name: str(posted.get(name, "")).strip() for name in FIELDS}


def sort_order(text: str) -> int:
    """`text` as a whole number, minus sign allowed. Raises `InvalidInput`."""
    if not _SIGNED.fullmatch(text):
        raise InvalidInput("sortOrder", "sort order must be a whole number")
    return int(text)


@signed_in
async def packages(request: web.Request, operator: str) -> web.StreamResponse:
    notice = DONE.get(request.query.get("done", ""))
    return await packages_page(request, blank_form(), notice=notice)


async def packages_page(
    request: web.Request,
    form: dict[str, str],
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> web.StreamResponse:
    """Every package and the add form, refilled with `form` after a refusal."""
    found = await request.config_dict[SERVICES].catalogue.packages()
    return await render(
        request,
        "packages.html",
        "Packages",
        status,
        packages=found,
        form=form,
        error=error,
        notice=notice,
    )


@signed_in
async def add(request: web.Request, operator: str) -> web.StreamResponse:
    form = await posted_form(request)
    if form is None:
        return await refused(request, "Refused", BAD_FORM, 403)
    try:
        package = await request.config_dict[SERVICES].catalogue.add(
            operator,
            form["key"],
            form["reason"],
            name=form["name"],
            credits=whole_number(form["credits"], "credits"),
            price_euro_cents=whole_number(form["price"], "price"),
            description=form["description"] or None,
            sort_order=sort_order(form["sort_order"]) if form["sort_order"] else None,
            same_name=bool(form["same_name"]),
        )
    except CreditsError as exc:
        status = 400 if isinstance(exc, InvalidInput) else 409
        return await packages_page(request, form, status=status, error=f"Not added: {exc.message}")
    raise web.HTTPSeeOther(f"/console/packages?done=added#package-{package.id}")


@signed_in
async def package(request: web.Request, operator: str) -> web.StreamResponse:
    notice = DONE.get(request.query.get("done", ""))
    return await package_page(request, None, notice=notice)


async def package_page(
    request: web.Request,
    form: dict[str, str] | None,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> web.StreamResponse:
    """A package's edit form (`form` refills it after a refusal; None: its values)
    and its on-sale switch."""
    try:
        found = await request.config_dict[SERVICES].catalogue.package(
            request.match_info["package_id"]
        )
    except (PackageNotFound, InvalidInput):
        return await refused(request, "No such package", "No package with this id.", 404)
    if form is None:
        form = blank_form() | {
            "name": found.name,
            "description": found.description or "",
            "credits": str(found.credits),
            "price": str(found.price_euro_cents),
            "sort_order": str(found.sort_order),
        }
    return await render(
        request,
        "package.html",
        f"Package {found.name}",
        status,
        package=found,
        form=form,
        switch_key=secrets.token_urlsafe(16),
        error=error,
        notice=notice,
    )


@signed_in
async def edit(request: web.Request, operator: str) -> web.StreamResponse:
    form = await posted_form(request)
    if form is None:
        return await refused(request, "Refused", BAD_FORM, 403)
    package_id = request.match_info["package_id"]
    try:
        await request.config_dict[SERVICES].catalogue.edit(
            operator,
            form["key"],
            form["reason"],
            package_id,
            name=form["name"],
            description=form["description"],
            credits=whole_number(form["credits"], "credits"),
            price_euro_cents=whole_number(form["price"], "price"),
            sort_order=sort_order(form["sort_order"]),
        )
    except PackageNotFound:
        return await refused(request, "No such package", "No package with this id.", 404)
    except CreditsError as exc:
        status = 400 if isinstance(exc, InvalidInput) else 409
        return await package_page(request, form, status=status, error=f"Not changed: {exc.message}")
    raise web.HTTPSeeOther(f"/console/packages/{package_id}?done=edited")


async def switch(request: web.Request, operator: str, on_sale: bool) -> web.StreamResponse:
    form = await posted_form(request)
    if form is None:
        return await refused(request, "Refused", BAD_FORM, 403)
    package_id = request.match_info["package_id"]
    try:
        _, changed = await request.config_dict[SERVICES].catalogue.set_on_sale(
            operator, form["key"], form["reason"], package_id, on_sale
        )
    except PackageNotFound:
        return await refused(request, "No such package", "No package with this id.", 404)
    except CreditsError as exc:
        status = 400 if isinstance(exc, InvalidInput) else 409
        verb = "put back on sale" if on_sale else "taken off sale"
        return await package_page(request, None, status=status, error=f"Not {verb}: {exc.message}")
    done = ("activated" if on_sale else "deactivated") if changed else "unchanged"
    raise web.HTTPSeeOther(f"/console/packages/{package_id}?done={done}")


@signed_in
async def deactivate(request: web.Request, operator: str) -> web.StreamResponse:
    return await switch(request, operator, on_sale=False)


@signed_in
async def activate(request: web.Request, operator: str) -> web.StreamResponse:
    return await switch(request, operator, on_sale=True)


@signed_in
async def gift(request: web.Request, operator: str) -> web.StreamResponse:
    """A gift by its code. The API's rate limit on gift look-ups guards the public
    routes against guessing; operators are signed in, so none applies here, but the
    code must look like one."""
    typed = request.query.get("code", "").strip()
    if not typed:
        return await render(request, "gift.html", "Gift look-up", code="", gift=None)
    code = normalise_code(typed)
    if len(typed) > MAX_CODE_INPUT or not code.isascii() or not code.isalnum():
        message = "A gift code is letters and digits (dashes and spaces allowed): check it."
        return await render(
            request, "gift.html", "Gift look-up", 400, code=typed, gift=None, error=message
        )
    services = request.config_dict[SERVICES]
    try:
        found = await services.gifts.lookup(code)
        redemptions = await services.gifts.redemptions(found.id)
    except GiftNotFound:
        message = f"No gift has the code {code}: check it, or ask for the gift's id."
        return await render(
            request, "gift.html", "Gift look-up", 404, code=typed, gift=None, error=message
        )
    return await render(
        request,
        "gift.html",
        f"Gift {found.code}",
        code=typed,
        gift=found,
        redemptions=redemptions,
    )


ROUTES = [
    ("GET", "/packages", packages),
    ("POST", "/packages", add),
    ("GET", "/packages/{package_id}", package),
    ("POST", "/packages/{package_id}", edit),
    ("POST", "/packages/{package_id}/deactivate", deactivate),
    ("POST", "/packages/{package_id}/activate", activate),
    ("GET", "/gifts", gift),
]
