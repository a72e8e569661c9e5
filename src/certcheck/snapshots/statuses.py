"""Registry status labels, English or Chinese, mapped into the closed set of `Status` values."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from certcheck.verification.records import Status
from certcheck.verification.text import normalise_text

# Labels seen in registry data, keyed as `_key` leaves them (NFKC, case-folded, no white
# space, so full-width parentheses match ASCII ones). Sources: labels in real registry data,
# https://www.shumaav.com/shumabaike/znsb/53555.html and
# http://www.ailuma55.com/news/2015-01/21/content_34616075.shtml
# A bare 无效 ("invalid") is deliberately absent: it could mean revoked, cancelled or
# expired, and guessing would hide which one.
_LABELS: Mapping[str, Status] = MappingProxyType(
    {
        "valid": Status.VALID,
        "有效": Status.VALID,
        "正常": Status.VALID,
        # 恢复 ("resumed") lifts a suspension: the certificate is in force again.
        "恢复": Status.VALID,
        "suspended": Status.SUSPENDED,
        "暂停": Status.SUSPENDED,
        "已暂停": Status.SUSPENDED,
        "revoked": Status.REVOKED,
        "撤销": Status.REVOKED,
        "已撤销": Status.REVOKED,
        "cancelled": Status.CANCELLED,
        # US spelling of the same word; not a guess about meaning.
        "canceled": Status.CANCELLED,
        "注销": Status.CANCELLED,
        "已注销": Status.CANCELLED,
        "证书注销": Status.CANCELLED,
        "注销(非申请)": Status.CANCELLED,
        "无效(依申请注销)": Status.CANCELLED,
        "expired": Status.EXPIRED,
        "过期": Status.EXPIRED,
        "已过期": Status.EXPIRED,
        "过期失效": Status.EXPIRED,
        "无效(逾期未换证)": Status.EXPIRED,
    }
)


def _key(label: str) -> str:
    # Inner white space goes too: "已 注销" or "注销 (非申请)" are copy-and-paste artefacts,
    # and no recognised label contains a meaningful space.
    return normalise_text(label).replace(" ", "")


def parse_status(label: str) -> Status | None:
    """The status a registry label stands for, or None when the label is not recognised."""
    return _LABELS.get(_key(label))
