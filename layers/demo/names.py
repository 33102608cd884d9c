"""Chinese place and road names for the demo (invented, in the style of real ones)."""

from __future__ import annotations

import numpy as np

CITIES = (
    {"code": "430100", "name": "长沙市", "districts": ("芙蓉区", "天心区", "岳麓区", "开福区")},
    {"code": "430300", "name": "湘潭市", "districts": ("雨湖区", "岳塘区", "湘潭县", "九华区")},
    {"code": "430200", "name": "株洲市", "districts": ("荷塘区", "芦淞区", "石峰区", "天元区")},
)

_SYLLABLES = (
    "东湖", "望月", "桂花", "枫林", "金盆", "岳麓", "湘江", "白沙", "清水", "文昌", "天马",
    "荷花", "杨柳", "梅溪", "银盆", "麓山", "南湖", "新河", "长岭", "洞井", "高桥", "曙光",
    "仰天", "黎托", "砂子", "和平", "建设", "红旗", "朝阳", "先锋", "五星", "青园", "月湖",
    "松柏", "丰泽", "德政", "兴业", "育才", "永安", "振兴", "宝塔", "龙泉", "凤凰", "景泰",
)
_ROAD_SUFFIX = ("路", "大道", "街", "巷")


def district_name(names: tuple[str, ...], index: int) -> str:
    """Name of the ``index``-th district of a city."""
    return names[index] if index < len(names) else f"第{index + 1}区"


def street_name(rng: np.random.Generator) -> str:
    """An invented sub-district (街道) name."""
    return f"{rng.choice(_SYLLABLES)}街道"


def community_name(rng: np.random.Generator) -> str:
    """An invented community (社区) name."""
    return f"{rng.choice(_SYLLABLES)}社区"


def road_name(rng: np.random.Generator, road_class: str) -> str:
    """An invented road name fitting its class."""
    if road_class == "motorway":
        return f"{rng.choice(('长株', '长潭', '潭衡', '京港澳'))}高速"
    suffix = "大道" if road_class == "arterial" else str(rng.choice(_ROAD_SUFFIX))
    return f"{rng.choice(_SYLLABLES)}{suffix}"


def place_name(rng: np.random.Generator, category: str) -> str:
    """An invented name for a key area of ``category``."""
    label = {
        "school": "小学", "kindergarten": "幼儿园", "hospital": "医院", "park": "公园",
        "entertainment": "娱乐城", "mall": "购物中心", "airport": "机场", "station": "火车站",
        "port": "港", "railway": "铁路货场", "border_port": "口岸",
        "government_hall": "政务服务中心", "market": "农贸市场",
    }[category]
    return f"{rng.choice(_SYLLABLES)}{label}"


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰志强文斌"


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` invented personal names (surname plus one or two characters)."""
    surnames = rng.choice(list(_SURNAMES), size=n)
    first = rng.choice(list(_GIVEN), size=n)
    second = np.where(rng.random(n) < 0.6, rng.choice(list(_GIVEN), size=n), "")
    return [a + b + c for a, b, c in zip(surnames, first, second, strict=True)]


def phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` invented mobile numbers in the 1xx-xxxx-xxxx pattern."""
    prefixes = rng.choice(["138", "139", "150", "151", "186", "187", "199"], size=n)
    rest = rng.integers(0, 10**8, size=n)
    return [f"{p}{r:08d}" for p, r in zip(prefixes, rest, strict=True)]
