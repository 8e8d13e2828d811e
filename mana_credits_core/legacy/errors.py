"""Why an import does not run."""

from __future__ import annotations

from ..errors import CreditsError


class ImportRefused(CreditsError):
    """The import will not run against these databases (nothing was changed)."""

    code = "import_refused"


class NotLegacyLayout(ImportRefused):
    """The source database is not the old service's layout."""

    code = "not_legacy_layout"


class TargetHoldsOtherData(ImportRefused):
    """The target already holds data for the imported users that is not the source's."""

    code = "target_holds_other_data"
