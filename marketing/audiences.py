"""Audiences for the tools marketers use: ad-platform customer lists, an email-platform CSV, a plain CSV.

`cdp audience` picks people by segment, churn band or rank on the churn list, and writes them
in the format one platform documents, with only the people that platform's channel has
consent for. Each export records whom it sent (as hashes, never the values) so the next one
says who joined and who left: what a daily sync to a platform needs, since each takes an add
file and a remove file.

Formats (the column headers are the platforms' own)
    ``meta``
        Meta custom audience customer list: ``email``, ``phone``. Email trimmed and
        lower-cased; phone as digits with the country code, no ``+``, no leading zeros; each
        SHA-256 in lower-case hex (Meta Marketing API, "Custom Audiences: hashing and
        normalizing data", https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences;
        Meta Business Help, "Customer list formatting guidelines").
    ``google``
        Google Ads Customer Match: ``Email``, ``Phone``. Email trimmed and lower-cased, with
        the dots before the ``@`` removed for gmail.com and googlemail.com addresses; phone
        in E.164 with its ``+``; each SHA-256 hex (Google Ads Help 7659867, "Format your
        customer data file"; Google Ads API, "Customer Match: normalize and hash"). Google
        documents no other rewriting: a ``+suffix`` stays, as do googlemail.com domains.
    ``email``
        An email platform's import: ``email``, ``first_name``, ``segment``, ``churn_band``,
        every text cell neutralized against spreadsheet formulas (`cdp.cells`).
    ``plain``
        No personal data: ``customer_id``, ``segment``, ``churn_band``, ``churn_probability``,
        ``rank``.

Consent
    Ad platforms get only people with ``consent_ads`` and at least one usable identifier;
    the email platform only people with ``consent_email`` and an email; the plain CSV needs
    none. A missing flag is no. The summary counts who was left out, and why.

Selection
    ``segments`` (any of), ``bands`` (`training.risk_bands.ChurnRiskBands`, any of), then
    ``top``: the first N of what is left in the churn list's order (revenue at risk, then
    churn probability, then customer id), every scored customer ranked whatever their risk
    or consent, so a rank means the same in every format. The audience is the same people
    whatever the format; consent then decides who of them each platform may get.

Changes
    The export writes ``<out>`` (everyone in the audience now), ``<stem>.joined.csv`` (not
    in the previous export of this audience and format) and ``<stem>.left.csv`` (in the
    previous one, not now; plus anyone erased since, once, as hashes: the platform must
    delete them too). Left rows of the ad formats are the hashes sent before; of the email
    format, the email (when the person still has it) and its hash; of the plain format, the
    customer id and its hash (an erased person's id appears only as its hash).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cdp.cells import safe_frame
from cdp.errors import CdpError
from marketing.lists import ListInputs, ListOptions, churn_list, read_list_inputs
from profiles.normalize import normalize_emails, normalize_phones
from store.interface import COMPACTION_PENDING, TableStore
from store.snapshot import ServingSnapshot
from training.risk_bands import ChurnRiskBands

__all__ = [
    "AUDIENCE_FORMATS",
    "AudienceExport",
    "AudienceRequest",
    "AudienceSelection",
    "changes",
    "export_audience",
    "format_rows",
    "google_email",
    "google_emails",
    "meta_email",
    "meta_emails",
    "meta_phone",
    "meta_phones",
    "phone_e164",
    "phones_e164",
    "select_audience",
    "sha256_hex",
    "summary_lines",
]

AUDIENCE_FORMATS = ("meta", "google", "email", "plain")
BAND_NAMES = ("low", "medium", "high")
_HEADERS = {
    "meta": ("email", "phone"),
    "google": ("Email", "Phone"),
    "email": ("email", "first_name", "segment", "churn_band"),
    "plain": ("customer_id", "segment", "churn_band", "churn_probability", "rank"),
}
_LEFT_HEADERS = {
    "meta": ("email", "phone"),
    "google": ("Email", "Phone"),
    "email": ("email", "email_sha256"),
    "plain": ("customer_id", "customer_id_sha256"),
}
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")


# ------------------------------------------------------------------ identifiers as the platforms take them

def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 text, lower-case hex (what both ad platforms take)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def meta_emails(values: pd.Series) -> pd.Series:
    """Meta's normalized emails: trimmed, lower-cased (as ingest normalizes them); NA where the
    value is not shaped like an email."""
    return normalize_emails(values)


def google_emails(values: pd.Series) -> pd.Series:
    """Google's normalized emails: Meta's, and the dots of the local part removed for gmail.com
    and googlemail.com addresses (Google's rule; nothing else is rewritten)."""
    emails = normalize_emails(values)
    parts = emails.str.rpartition("@")
    gmail = parts[2].isin(_GMAIL_DOMAINS).fillna(False).astype(bool)
    undotted = parts[0].str.replace(".", "", regex=False) + "@" + parts[2]
    return emails.where(~gmail, undotted).astype("string")


def phones_e164(values: pd.Series, region: str | None) -> pd.Series:
    """Phones in E.164 (``+970591234567``), parsed as ingest parses them (`profiles.normalize`):
    with their country code, or written locally in ``region``; NA when not a valid number."""
    return normalize_phones(values, region)


def meta_phones(values: pd.Series, region: str | None) -> pd.Series:
    """Meta's normalized phones: digits only, country code first, no ``+`` and no leading zeros."""
    return phones_e164(values, region).str.slice(1).str.lstrip("0")


def _one(normalize, value: object, *args) -> str | None:
    found = normalize(pd.Series([value], dtype="string"), *args).iloc[0]
    return None if pd.isna(found) else str(found)


def meta_email(email: object) -> str | None:
    """`meta_emails` of one value (None when it is not an email)."""
    return _one(meta_emails, email)


def google_email(email: object) -> str | None:
    """`google_emails` of one value."""
    return _one(google_emails, email)


def phone_e164(phone: object, region: str | None) -> str | None:
    """`phones_e164` of one value."""
    return _one(phones_e164, phone, region)


def meta_phone(phone: object, region: str | None) -> str | None:
    """`meta_phones` of one value."""
    return _one(meta_phones, phone, region)


def _hashed(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) or not v else sha256_hex(str(v)) for v in values]


# ------------------------------------------------------------------ what was asked for

@dataclass(frozen=True)
class AudienceSelection:
    """Who is in the audience: any of ``segments`` and any of ``bands`` (each filter only when
    given), then the first ``top`` in churn-list order; ``everyone`` for every scored customer."""

    segments: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    top: int | None = None
    everyone: bool = False

    def __post_init__(self) -> None:
        if not (self.segments or self.bands or self.top or self.everyone):
            raise CdpError("choose the audience with --segment, --band or --top (or --all for every scored "
                           "customer)")
        if self.everyone and (self.segments or self.bands or self.top):
            raise CdpError("--all is every scored customer: give it alone, or choose with --segment, --band, --top")
        unknown = [b for b in self.bands if b not in BAND_NAMES]
        if unknown:
            raise CdpError(f"--band {unknown[0]!r} is not a churn band; use {', '.join(BAND_NAMES)}")
        if self.top is not None and self.top < 1:
            raise CdpError(f"--top {self.top}: give at least 1")

    def default_name(self) -> str:
        """A name from the selection (``band-high_top-500``): the same selection, the same audience."""
        if self.everyone:
            return "all"
        parts = [f"segment-{_slug(s)}" for s in sorted(self.segments)]
        parts += [f"band-{b}" for b in sorted(self.bands, key=BAND_NAMES.index)]
        parts += [f"top-{self.top}"] if self.top else []
        return "_".join(parts)[:80]

    def as_dict(self) -> dict:
        return {"segments": list(self.segments), "bands": list(self.bands), "top": self.top,
                "everyone": self.everyone}


@dataclass(frozen=True)
class AudienceRequest:
    """One export: the audience's ``name``, its ``selection``, the ``format`` (`AUDIENCE_FORMATS`),
    the churn bands and horizon of the churn list, and the region local phones are read in."""

    name: str
    selection: AudienceSelection
    format: str
    bands: ChurnRiskBands = field(default_factory=ChurnRiskBands)
    horizon_days: int = 90
    phone_region: str | None = None

    def __post_init__(self) -> None:
        if self.format not in AUDIENCE_FORMATS:
            raise CdpError(f"--format {self.format!r} is not an audience format; use {', '.join(AUDIENCE_FORMATS)}")
        if not _NAME.match(self.name):
            raise CdpError(f"--name {self.name!r}: use up to 80 letters, digits and . _ + - (starting with a letter "
                           "or digit)")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


# ------------------------------------------------------------------ pure parts

def select_audience(inputs: ListInputs, selection: AudienceSelection, bands: ChurnRiskBands,
                    horizon_days: int) -> pd.DataFrame:
    """The audience: ``customer_id``, ``segment``, ``churn_probability``, ``churn_band`` and
    ``rank`` (1 = most revenue at risk; empty without a churn score), in rank order then id.

    Only customers still in the ``customers`` table (an erased person is not) are chosen."""
    scores = inputs.scores.assign(customer_id=inputs.scores["customer_id"].astype(str))
    known = set(inputs.customers["customer_id"].astype(str))
    scores = scores[scores["customer_id"].isin(known)].reset_index(drop=True)
    segments = sorted(scores["segment"].dropna().astype(str).unique())
    for segment in selection.segments:
        if segment not in segments:
            raise CdpError(f"--segment {segment!r} is not a segment of the scored customers; known segments: "
                           f"{', '.join(segments) or 'none'}")
    ranked = churn_list(inputs, ListOptions(include_no_consent=True, include_low_risk=True,
                                            horizon_days=horizon_days, bands=bands), in_words=False).rows
    rank = pd.Series(np.arange(1, len(ranked) + 1), index=ranked["customer_id"].astype(str).to_numpy())
    probability = pd.to_numeric(scores["churn_probability"], errors="coerce").astype(float)
    chosen = pd.DataFrame({
        "customer_id": scores["customer_id"].to_numpy(),
        "segment": scores["segment"].astype(object).to_numpy(),
        "churn_probability": probability.round(4).to_numpy(),
        "churn_band": bands.bands(probability.to_numpy()),
        "rank": scores["customer_id"].map(rank).astype("Int64"),
    })
    keep = np.ones(len(chosen), dtype=bool)
    if selection.segments:
        keep &= chosen["segment"].isin(selection.segments).to_numpy()
    if selection.bands:
        keep &= chosen["churn_band"].isin(selection.bands).to_numpy()
    if selection.top:
        keep &= chosen["rank"].notna().to_numpy()
    chosen = chosen[keep].sort_values(["rank", "customer_id"], na_position="last", kind="stable")
    if selection.top:
        chosen = chosen.head(selection.top)
    return chosen.reset_index(drop=True)


@dataclass(frozen=True)
class FormattedAudience:
    """An audience in one format: the file's ``rows`` (its headers), the ``members`` to record
    (``customer_id``, ``email_sha256``, ``phone_sha256``; hashes empty for the plain format)
    and who was left out for want of consent or of an identifier."""

    rows: pd.DataFrame
    members: pd.DataFrame
    without_consent: int
    without_identifier: int


def _consented(flags: pd.Series) -> np.ndarray:
    return flags.astype("boolean").fillna(False).astype(bool).to_numpy()


def format_rows(audience: pd.DataFrame, customers: pd.DataFrame, fmt: str,
                phone_region: str | None = None) -> FormattedAudience:
    """The audience (`select_audience`) as ``fmt`` takes it, with the consent its channel needs."""
    contacts = customers.assign(customer_id=customers["customer_id"].astype(str))
    people = audience.merge(contacts, on="customer_id", how="left", validate="one_to_one")
    if fmt == "plain":
        rows = people[list(_HEADERS["plain"])].reset_index(drop=True)
        members = pd.DataFrame({"customer_id": rows["customer_id"], "email_sha256": None, "phone_sha256": None})
        return FormattedAudience(rows=safe_frame(rows), members=members, without_consent=0, without_identifier=0)
    consent = _consented(people["consent_ads" if fmt in ("meta", "google") else "consent_email"])
    people = people[consent]
    none = pd.Series(pd.NA, index=people.index, dtype="string")
    if fmt == "email":
        email, phone = meta_emails(people["email"]), none
    elif fmt == "google":
        email, phone = google_emails(people["email"]), phones_e164(people["phone"], phone_region)
    else:
        email, phone = meta_emails(people["email"]), meta_phones(people["phone"], phone_region)
    has_id = (email.notna() | phone.notna()).to_numpy()
    people, email, phone = people[has_id], email[has_id], phone[has_id]
    email_hash, phone_hash = _hashed(email), _hashed(phone)
    members = pd.DataFrame({"customer_id": people["customer_id"].to_numpy(), "email_sha256": email_hash,
                            "phone_sha256": phone_hash})
    if fmt == "email":
        rows = pd.DataFrame({"email": email.astype(object).to_numpy(),
                             "first_name": people["first_name"].astype(object).to_numpy(),
                             "segment": people["segment"].to_numpy(), "churn_band": people["churn_band"].to_numpy()})
    else:
        rows = pd.DataFrame(dict(zip(_HEADERS[fmt], (email_hash, phone_hash))))
    # Two customers the platform would see as one (the same hashes) are sent once.
    key = _keys(members, fmt)
    first = ~pd.Series(key).duplicated().to_numpy()
    return FormattedAudience(rows=safe_frame(rows[first].reset_index(drop=True)),
                             members=members[first].reset_index(drop=True),
                             without_consent=int((~consent).sum()), without_identifier=int((~has_id).sum()))


def _keys(members: pd.DataFrame, fmt: str) -> list[str]:
    """What tells two members apart on the platform: the customer id (plain), the email hash
    (email), or the pair of hashes (ad platforms: a changed phone is a new member)."""
    if fmt == "plain":
        return members["customer_id"].astype(str).tolist()
    if fmt == "email":
        return [_text(v) for v in members["email_sha256"]]
    return [f"{_text(e)}:{_text(p)}" for e, p in zip(members["email_sha256"], members["phone_sha256"])]


def _text(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(value)


@dataclass(frozen=True)
class Changes:
    """Rows of the joined and left files, and how many of the left were erased people."""

    joined: pd.DataFrame
    left: pd.DataFrame
    erased: int


def changes(formatted: FormattedAudience, previous: pd.DataFrame, removals: pd.DataFrame, fmt: str,
            customers: pd.DataFrame) -> Changes:
    """Who joined since the ``previous`` membership and who left it, plus the ``removals``
    erasure left owing (hashes only), each once."""
    now_keys = _keys(formatted.members, fmt)
    before_keys = set(_keys(previous, fmt)) if len(previous) else set()
    joined = formatted.rows[[k not in before_keys for k in now_keys]].reset_index(drop=True)
    current = set(now_keys)
    gone = previous[[k not in current for k in _keys(previous, fmt)]] if len(previous) else previous
    gone = gone.drop_duplicates(subset=["customer_id", "email_sha256", "phone_sha256"])
    if fmt in ("meta", "google"):
        left = pd.concat([gone[["email_sha256", "phone_sha256"]], removals[["email_sha256", "phone_sha256"]]],
                         ignore_index=True).drop_duplicates()
        left.columns = list(_LEFT_HEADERS[fmt])
    elif fmt == "email":
        emails = customers.assign(customer_id=customers["customer_id"].astype(str)).set_index("customer_id")["email"]
        still: list[str | None] = []  # the email itself while the person still has it
        for email, recorded in zip(gone["customer_id"].astype(str).map(emails), gone["email_sha256"]):
            value = meta_email(email)
            still.append(value if value and sha256_hex(value) == recorded else None)
        left = pd.concat([pd.DataFrame({"email": still,
                                        "email_sha256": gone["email_sha256"].to_numpy()}),
                          pd.DataFrame({"email": None, "email_sha256": removals["email_sha256"].to_numpy()})],
                         ignore_index=True).drop_duplicates(subset=["email_sha256"])
    else:
        ids = gone["customer_id"].astype(str)
        left = pd.concat([pd.DataFrame({"customer_id": ids.to_numpy(),
                                        "customer_id_sha256": [sha256_hex(i) for i in ids]}),
                          pd.DataFrame({"customer_id": None,
                                        "customer_id_sha256": removals["customer_id_sha256"].to_numpy()})],
                         ignore_index=True).drop_duplicates(subset=["customer_id_sha256"])
    return Changes(joined=joined, left=safe_frame(left.reset_index(drop=True)), erased=len(removals))


# ------------------------------------------------------------------ the export, with its I/O

@dataclass(frozen=True)
class AudienceExport:
    """What one export did: counts for the summary and the files it wrote."""

    name: str
    format: str
    members: int
    joined: int
    left: int
    erased_removed: int
    without_consent: int
    without_identifier: int
    selected: int
    previous_export_at: str | None
    files: tuple[Path, ...]


def check_csv(out: Path) -> Path:
    """``out`` if it names a CSV file; a clear error otherwise (every platform takes CSV)."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise CdpError(f"--out {out}: audiences are CSV files; give a file ending in .csv")
    return out


def change_paths(out: Path) -> tuple[Path, Path]:
    """The joined and left files beside ``out``: ``<stem>.joined.csv`` and ``<stem>.left.csv``."""
    return out.with_name(f"{out.stem}.joined.csv"), out.with_name(f"{out.stem}.left.csv")


def export_audience(store: TableStore, snapshot: ServingSnapshot, request: AudienceRequest, out: Path, *,
                    now: datetime, export_id: str) -> AudienceExport:
    """Select, format and write the audience, its joined and left files, and record the
    membership sent, all or nothing.

    ``store`` is open for writing (its writer lock keeps `cdp forget` out until the end). The
    files are written under temporary names, moved into place inside the store transaction
    that records the membership and empties the removals owed, just before it commits: a
    failure before leaves neither files nor records; a crash between the moves and the commit
    leaves files the next export sends again (adding a member twice and removing an absent
    one are no-ops for the platforms), never a membership recorded but not sent. Removals of
    erased people are deleted with the commit, and the store is rebuilt (`TableStore.compact`)
    so their hashes cannot be read back from its bytes."""
    out = check_csv(out)
    inputs = read_list_inputs(store, snapshot)
    columns = set(store.frame("SELECT * FROM customers LIMIT 0").columns)
    if "consent_ads" not in columns:
        raise CdpError(f"store {store.path}: its customers were unified before consent_ads existed; run `cdp unify` "
                       "(or `cdp refresh`) first")
    customers = store.frame("SELECT customer_id, email, phone, first_name, consent_email, consent_ads FROM customers")
    audience = select_audience(inputs, request.selection, request.bands, request.horizon_days)
    formatted = format_rows(audience, customers, request.format, request.phone_region)
    match = {"audience": request.name, "format": request.format}
    previous = store.frame("SELECT customer_id, email_sha256, phone_sha256, exported_at FROM audience_members "
                           "WHERE audience = ? AND format = ?", [request.name, request.format])
    removals = store.frame("SELECT customer_id_sha256, email_sha256, phone_sha256 FROM audience_removals "
                           "WHERE audience = ? AND format = ?", [request.name, request.format])
    found = changes(formatted, previous, removals, request.format, customers)
    joined_path, left_path = change_paths(out)
    written = ((out, formatted.rows), (joined_path, found.joined), (left_path, found.left))
    staged: list[Path] = []
    try:
        for path, rows in written:
            temp = path.with_name(f".{path.name}.writing-{export_id}")
            staged.append(temp)
            rows.to_csv(temp, index=False, encoding="utf-8")
        with store.writing() as writer:
            stamp = pd.Timestamp(now)
            writer.replace_rows("audience_members", "marketing", match, formatted.members.assign(
                audience=request.name, format=request.format, export_id=export_id, exported_at=stamp))
            writer.replace_rows("audience_removals", "marketing", match, pd.DataFrame())
            writer.replace_rows("audience_exports", "marketing", {"export_id": export_id}, pd.DataFrame([{
                "export_id": export_id, "audience": request.name, "format": request.format,
                "selection": json.dumps({**request.selection.as_dict(), "churn_medium": request.bands.medium,
                                         "churn_high": request.bands.high, "horizon_days": request.horizon_days},
                                        sort_keys=True),
                "exported_at": stamp,
                "members": len(formatted.rows), "joined": len(found.joined), "left": len(found.left),
                "erased_removed": found.erased, "file": str(out)}]))
            if found.erased:
                writer.set_meta(COMPACTION_PENDING, "1")  # a crash before the rebuild: the next writer does it
            for temp, (path, _) in zip(staged, written):
                temp.replace(path)
            staged = []
    finally:
        for temp in staged:
            temp.unlink(missing_ok=True)
    if found.erased:
        store.compact()
    before = previous["exported_at"].max() if len(previous) else None
    return AudienceExport(name=request.name, format=request.format, members=len(formatted.rows),
                          joined=len(found.joined), left=len(found.left), erased_removed=found.erased,
                          without_consent=formatted.without_consent, without_identifier=formatted.without_identifier,
                          selected=len(audience), previous_export_at=None if before is None else str(before),
                          files=(out, joined_path, left_path))


_WHY = {"meta": "ads consent", "google": "ads consent", "email": "email consent"}
_IDENTIFIER = {"meta": "an email or phone", "google": "an email or phone", "email": "an email"}


def summary_lines(done: AudienceExport) -> list[str]:
    """The summary in words: counts only (never an email, phone or name)."""
    since = f"since the export of {done.previous_export_at}" if done.previous_export_at else "(first export)"
    lines = [f"audience {done.name!r} ({done.format}): {done.members:,} of {done.selected:,} chosen customers sent; "
             f"{done.joined:,} joined, {done.left:,} left {since}"]
    if done.erased_removed:
        lines.append(f"{done.erased_removed:,} erased people are in the left file, as hashes, for the platform to "
                     "delete too; the store no longer holds them")
    if done.without_consent:
        lines.append(f"{done.without_consent:,} left out without {_WHY[done.format]}")
    if done.without_identifier:
        lines.append(f"{done.without_identifier:,} left out without {_IDENTIFIER[done.format]}")
    return lines
