"""parse_status: every label the domain README lists, and labels that must never count."""

from __future__ import annotations

import pytest

from certcheck.snapshots.statuses import parse_status
from certcheck.verification.records import Status


class TestParseStatus:
    @pytest.mark.parametrize(
        ("label", "expected"),
        [
            pytest.param("valid", Status.VALID, id="valid"),
            pytest.param("VALID", Status.VALID, id="valid-upper"),
            pytest.param(" Valid\t", Status.VALID, id="valid-padded"),
            pytest.param("\uff36\uff21\uff2c\uff29\uff24", Status.VALID, id="valid-full-width"),
            pytest.param("有效", Status.VALID, id="youxiao"),
            pytest.param("\u3000有效\u3000", Status.VALID, id="youxiao-ideographic-space"),
            pytest.param("正常", Status.VALID, id="zhengchang"),
            pytest.param("恢复", Status.VALID, id="huifu-resumed"),
            pytest.param("suspended", Status.SUSPENDED, id="suspended"),
            pytest.param("Suspended", Status.SUSPENDED, id="suspended-title"),
            pytest.param("暂停", Status.SUSPENDED, id="zanting"),
            pytest.param("已暂停", Status.SUSPENDED, id="yi-zanting"),
            pytest.param("revoked", Status.REVOKED, id="revoked"),
            pytest.param("撤销", Status.REVOKED, id="chexiao"),
            pytest.param("已撤销", Status.REVOKED, id="yi-chexiao"),
            pytest.param("已 撤销", Status.REVOKED, id="yi-chexiao-inner-space"),
            pytest.param("cancelled", Status.CANCELLED, id="cancelled"),
            pytest.param("CANCELED", Status.CANCELLED, id="canceled-us"),
            pytest.param("注销", Status.CANCELLED, id="zhuxiao"),
            pytest.param("已注销", Status.CANCELLED, id="yi-zhuxiao"),
            pytest.param("证书注销", Status.CANCELLED, id="zhengshu-zhuxiao"),
            pytest.param("注销(非申请)", Status.CANCELLED, id="zhuxiao-feishenqing"),
            pytest.param(
                "注销\uff08非申请\uff09", Status.CANCELLED, id="zhuxiao-feishenqing-full-width"
            ),
            pytest.param("注销 (非申请)", Status.CANCELLED, id="zhuxiao-feishenqing-spaced"),
            pytest.param("无效\uff08依申请注销\uff09", Status.CANCELLED, id="wuxiao-yishenqing"),
            pytest.param("无效(依申请注销)", Status.CANCELLED, id="wuxiao-yishenqing-ascii"),
            pytest.param("expired", Status.EXPIRED, id="expired"),
            pytest.param("过期", Status.EXPIRED, id="guoqi"),
            pytest.param("已过期", Status.EXPIRED, id="yi-guoqi"),
            pytest.param("过期失效", Status.EXPIRED, id="guoqi-shixiao"),
            pytest.param("无效\uff08逾期未换证\uff09", Status.EXPIRED, id="wuxiao-yuqi"),
            pytest.param("无效(逾期未换证)", Status.EXPIRED, id="wuxiao-yuqi-ascii"),
        ],
    )
    def test_known_label(self, label: str, expected: Status) -> None:
        assert parse_status(label) is expected

    @pytest.mark.parametrize(
        "label",
        [
            pytest.param("", id="empty"),
            pytest.param("   ", id="blank"),
            pytest.param("无效", id="bare-wuxiao-ambiguous"),
            pytest.param("invalid", id="invalid"),
            pytest.param("active", id="active"),
            pytest.param("ok", id="ok"),
            pytest.param("1", id="digit"),
            pytest.param("valid?", id="valid-question"),
            pytest.param("not valid", id="not-valid"),
            pytest.param("有效期", id="youxiaoqi-validity-period"),
            pytest.param("valid\x00", id="valid-nul"),
            pytest.param("未知", id="weizhi-unknown"),
            pytest.param("注销(申请)", id="zhuxiao-unknown-variant"),
        ],
    )
    def test_unrecognised_label_is_none(self, label: str) -> None:
        assert parse_status(label) is None
