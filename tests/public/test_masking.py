"""Personal details masked in words, as riders write them (app/masking.py)."""

import time

import pytest

from app.public import MASK, mask_personal_details

M = MASK


@pytest.mark.parametrize(
    ("written", "public"),
    [
        ("车主电话138 1234 5678，车牌沪A·12345", f"车主电话{M}，车牌{M}"),
        ("+86 138-1234-5678", M),
        ("0086 13812345678 找他", f"{M} 找他"),
        ("138－1234－5678", M),
        ("138—1234—5678", M),
        ("车主电话１３８１２３４５６７８，好", f"车主电话{M}，好"),
        ("座机021-62512345", f"座机{M}"),
        ("(021)62512345", M),
        ("物业 6251 2345", f"物业 {M}"),
        ("身份证310105199001011234", f"身份证{M}"),
        ("身份证 31010519900101123X 丢了", f"身份证 {M} 丢了"),
        ("身份证 310101 1990 0101 1234", f"身份证 {M}"),
        ("老身份证 310105900101123", f"老身份证 {M}"),
        ("邮箱 zhang.san@example.com", f"邮箱 {M}"),
        ("邮箱 a＠b.com", f"邮箱 {M}"),
        ("沪AD12345停在人行道", f"{M}停在人行道"),
        ("粤b12345", M),
        ("沪Ａ12345", M),
        ("沪A．12345", M),
        ("沪A 1234 5 的车", f"{M} 的车"),
    ],
)
def test_personal_details_are_masked(written: str, public: str) -> None:
    assert mask_personal_details(written) == public


@pytest.mark.parametrize(
    "kept",
    [
        "2026年12月7日 共3辆",
        "门牌号1208弄",
        "愚园路100弄3号",
        "温度 23.5 度，坑深 10cm",
        "订单号 12345678901234567890",
        "井盖缺失，已放了一个纸箱提醒",
    ],
)
def test_other_words_are_left_as_written(kept: str) -> None:
    assert mask_personal_details(kept) == kept


def test_nothing_and_long_words_are_quick() -> None:
    assert mask_personal_details(None) is None and mask_personal_details("") == ""
    for hostile in ("1 " * 2000, "沪A" + "1 " * 2000, "a@" * 2000, "1-" * 2000):
        started = time.perf_counter()
        mask_personal_details(hostile)
        assert time.perf_counter() - started < 0.5, hostile[:10]
