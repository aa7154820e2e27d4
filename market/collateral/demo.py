"""A small, realistic pledged portfolio for the demo bank.

Eight pledgor companies in the cities of the demo's guarantee pools (docs/rules.md
§Guarantee pools), twenty patents with Chinese titles and abstracts, real IPC codes and
valid application numbers, two trademarks and a software copyright; ten pledges and loans,
six of them defaulted. Dates are relative to the clock, so the demo always shows one patent
whose annuity is overdue (in the grace period) and one whose term ends within 90 days. It
goes through the CSV import, so it is validated like any upload, and seeding twice updates
instead of duplicating.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from market.collateral import csv_format
from market.collateral.csv_import import StartImport, import_now
from market.collateral.monitoring import business_day
from market.collateral.rules import add_years
from market.commands import Act
from market.validators import _credit_check_char, _patent_check_char

# (key, name, credit-code body, region)
PLEDGORS = [
    ("cd", "成都芯视智能科技有限公司", "91510100MA6CQ8R2N", "四川省成都市"),
    ("sz", "深圳市锂能新材料有限公司", "91440300MA5FK3P7X", "广东省深圳市"),
    ("zs", "中山市光合新能源科技有限公司", "91442000MA4W6T8L2", "广东省中山市"),
    ("hz", "杭州康缝医疗器械有限公司", "91330100MA2H7J4B1", "浙江省杭州市"),
    ("bj", "北京链融数据科技有限公司", "91110108MA01G4K9W", "北京市海淀区"),
    ("dg", "东莞市精驰电机有限公司", "91441900MA51D2E6H", "广东省东莞市"),
    ("su", "苏州纳印电子材料有限公司", "91320500MA1N9R3C8", "江苏省苏州市"),
    ("wh", "武汉绿源生物科技有限公司", "91420100MA4K2Y7U5", "湖北省武汉市"),
]

# (pledge no, pledgor, registered, secured yuan, loan no, principal, rate %, outstanding
#  principal, interest, default date or None, NPL class, pool code)
# Pool codes name the demo's guarantee pools (market/pools/demo.py).
# fmt: off
LOANS = [
    ("Y2022510000318", "cd", "2022-03-18", 5_000_000, "CD-ZGC-2022-0318", 5_000_000, "4.35",
     4_200_000, 186_450, "2023-09-20", "次级", "CD-GZD"),
    ("Y2023510000077", "cd", "2023-02-07", 3_000_000, "CD-ZGC-2023-0077", 3_000_000, "3.85",
     3_000_000, 0, None, "", "CD-GZD"),
    ("Y2021440000912", "sz", "2021-09-12", 10_000_000, "SZ-ZGC-2021-0912", 10_000_000, "4.75",
     8_600_000, 512_300, "2023-03-15", "可疑", "SZ-RCF"),
    ("Y2022440001205", "zs", "2022-12-05", 6_000_000, "ZS-ZGC-2022-1205", 6_000_000, "4.20",
     5_500_000, 230_100, "2024-06-30", "次级", "ZS-RCF"),
    ("Y2022330000561", "hz", "2022-05-21", 4_000_000, "HZ-ZGC-2022-0561", 4_000_000, "3.95",
     3_900_000, 0, None, "", ""),
    ("Y2021110000433", "bj", "2021-04-30", 8_000_000, "BJ-ZGC-2021-0433", 8_000_000, "4.05",
     7_800_000, 620_000, "2022-11-01", "损失", "HD-ZRB"),
    ("Y2023440000089", "dg", "2023-01-09", 7_000_000, "DG-ZGC-2023-0089", 7_000_000, "3.65",
     6_950_000, 98_000, "2024-10-08", "次级", "DG-RCF"),
    ("Y2022320000745", "su", "2022-07-25", 3_500_000, "SU-ZGC-2022-0745", 3_500_000, "4.35",
     2_100_000, 0, None, "", "SU-ZZD"),
    ("Y2021420000316", "wh", "2021-03-16", 2_500_000, "WH-ZGC-2021-0316", 2_500_000, "4.55",
     2_450_000, 176_800, "2023-05-10", "可疑", ""),
    ("Y2024510000019", "cd", "2024-01-19", 2_000_000, "CD-ZGC-2024-0019", 2_000_000, "3.45",
     2_000_000, 0, None, "", "CD-GZD"),
]

# (pledge no, type digit, serial, filing date, title, abstract, IPC codes, licences)
# Type digit: 1 invention, 2 utility model, 3 design (ZC 0006-2003).
PATENTS = [
    ("Y2022510000318", 1, 512_345, "2019-04-12", "一种基于深度学习的印制电路板缺陷视觉检测方法",
     "本发明公开了一种基于深度学习的印制电路板缺陷视觉检测方法，通过多尺度特征融合网络识别"
     "短路、断路和缺件，检测准确率达99.2%。",
     "G06T 7/00;G06N 3/08", "普通许可：成都某电子制造有限公司，2023-01-01至2027-12-31"),
    ("Y2022510000318", 2, 233_871, "2020-08-03", "一种工业相机多光源同步触发装置",
     "本实用新型公开了一种工业相机多光源同步触发装置，可在微秒级同步多路光源与相机曝光，"
     "提高高速产线成像质量。",
     "H04N 23/56", ""),
    ("Y2023510000077", 1, 108_842, "2021-06-22", "远场语音交互设备的多通道降噪方法",
     "本发明公开了一种远场语音交互设备的多通道降噪方法，基于麦克风阵列波束形成与深度神经"
     "网络后滤波抑制混响和噪声。",
     "G10L 21/0208;G10L 15/20", ""),
    ("Y2021440000912", 1, 367_115, "2017-11-08", "一种高镍三元正极材料及其制备方法",
     "本发明公开了一种高镍三元正极材料及其制备方法，通过铝镁共掺杂和包覆改性提高材料循环"
     "稳定性与热稳定性。",
     "H01M 4/525;H01M 10/0525", ""),
    ("Y2021440000912", 1, 402_978, "2018-05-29", "锂离子电池极片涂布厚度在线检测方法",
     "本发明公开了一种锂离子电池极片涂布厚度在线检测方法，采用激光三角测距与卡尔曼滤波"
     "实现涂布面密度闭环控制。",
     "G01B 11/06;H01M 4/04", ""),
    ("Y2021440000912", 1, 651_220, "2019-09-17", "一种5G基站天线辐射单元",
     "本发明公开了一种5G基站天线辐射单元，采用双极化振子与寄生贴片结构，在3.3-3.8GHz频段"
     "内实现高隔离度。",
     "H01Q 1/36;H01Q 21/24", ""),
    ("Y2022440001205", 1, 290_031, "2018-03-21", "一种光伏组件清洗机器人及其清洗方法",
     "本发明公开了一种光伏组件清洗机器人，依靠无水滚刷与自主跨排机构完成大型电站组件清洁，"
     "节水并提高发电效率。",
     "H02S 40/10;B08B 1/00", ""),
    ("Y2022440001205", 1, 715_664, "2020-10-10", "微型光伏逆变器的孤岛检测方法",
     "本发明公开了一种微型光伏逆变器的孤岛检测方法，通过主动频率偏移与阻抗测量结合，缩短"
     "检测时间并减少盲区。",
     "H02J 3/38;H02M 7/5387", ""),
    ("Y2022330000561", 1, 155_409, "2019-01-15", "一种可降解聚乳酸医用缝合线及其制备方法",
     "本发明公开了一种可降解聚乳酸医用缝合线，经共聚改性和抗菌涂层处理，兼具拉伸强度与"
     "可控降解周期。",
     "A61L 17/12;A61L 17/14", ""),
    ("Y2022330000561", 2, 417_286, "2021-04-02", "一种一次性使用内窥镜操作手柄",
     "本实用新型公开了一种一次性使用内窥镜操作手柄，采用一体注塑转向机构，降低成本并避免"
     "交叉感染。",
     "A61B 1/005", ""),
    ("Y2021110000433", 1, 98_731, "2018-07-06", "基于区块链的供应链金融数据存证方法",
     "本发明公开了一种基于区块链的供应链金融数据存证方法，利用默克尔树与多方签名保证应收"
     "账款数据不可篡改。",
     "G06Q 40/03;H04L 9/00", ""),
    # the pledgor stopped paying this one's annuity (see _rows)
    ("Y2021110000433", 1, 204_557, "2019-12-19", "车载激光雷达点云目标检测方法",
     "本发明公开了一种车载激光雷达点云目标检测方法，基于体素化稀疏卷积网络实现车辆和行人"
     "的实时三维检测。",
     "G01S 17/931;G06V 20/58", ""),
    ("Y2021110000433", 1, 611_093, "2020-05-26", "分布式数据库事务一致性控制方法",
     "本发明公开了一种分布式数据库事务一致性控制方法，采用混合逻辑时钟与乐观并发控制降低"
     "跨节点事务延迟。",
     "G06F 16/27;G06F 16/23", ""),
    # its ten years end in 60 days (filing date computed in _rows)
    ("Y2023440000089", 2, 130_288, "", "一种新能源汽车电机控制器散热结构",
     "本实用新型公开了一种新能源汽车电机控制器散热结构，通过针翅式水冷板与导热垫降低功率"
     "模块结温。",
     "H02K 9/22;H05K 7/20", ""),
    ("Y2023440000089", 1, 566_745, "2020-02-27", "一种注塑模具快速换模装置及换模方法",
     "本发明公开了一种注塑模具快速换模装置，利用液压夹紧与定位销导向，将换模时间缩短至"
     "5分钟以内。",
     "B29C 45/17;B29C 33/30", ""),
    ("Y2023440000089", 3, 302_114, "2022-08-16", "智能门锁",
     "外观设计产品为智能门锁，设计要点在于面板形状与指纹模块布局。", "", ""),
    ("Y2022320000745", 1, 377_902, "2019-06-11", "一种纳米银导电油墨及其制备方法",
     "本发明公开了一种纳米银导电油墨，采用多元醇还原法制备粒径均一的银纳米颗粒，低温烧结"
     "后电阻率低。",
     "C09D 11/52;H05K 1/09", ""),
    ("Y2022320000745", 1, 498_530, "2021-03-08", "柔性电路板激光切割定位方法",
     "本发明公开了一种柔性电路板激光切割定位方法，基于视觉标记点与热变形补偿模型提高切割"
     "精度。",
     "B23K 26/38;B23K 26/03", ""),
    ("Y2021420000316", 1, 260_417, "2017-09-05", "一种中药配方颗粒的质量检测方法",
     "本发明公开了一种中药配方颗粒的质量检测方法，结合高效液相色谱指纹图谱与多指标含量测定"
     "评价批次一致性。",
     "G01N 30/02;A61K 36/00", ""),
    ("Y2021420000316", 1, 318_644, "2018-12-13", "一种用于污水处理的复合絮凝剂及其制备方法",
     "本发明公开了一种用于污水处理的复合絮凝剂，由聚合氯化铝与改性壳聚糖复配，对印染废水"
     "色度去除率高。",
     "C02F 1/52;C02F 1/56", ""),
]

# (pledge no, kind, number, title, Nice classes, valid until, registered on)
OTHER_ASSETS = [
    ("Y2024510000019", "商标", "38120456", "“芯视”文字及图形商标", "9;42", "2031-06-27", ""),
    ("Y2021420000316", "商标", "27564310", "“绿源”商标", "5;30", "2028-11-13", ""),
    ("Y2024510000019", "软件著作权", "2021SR0567890", "芯视工业视觉检测平台软件V3.0", "", "",
     "2021-04-16"),
]
# fmt: on


def _patent_number(filed: date, type_digit: int, serial: int) -> str:
    body = f"{filed.year:04d}{type_digit}{serial:07d}"
    return f"{body}.{_patent_check_char(body)}"


def _paid_through(filed: date, today: date) -> date:
    """Annuities paid for the current patent year: through the day before the next
    anniversary of filing, or the one after if that is within a month (no flag)."""
    anniversary = filed.replace(year=today.year)
    while anniversary <= today + timedelta(days=31):
        anniversary = add_years(anniversary, 1)
    return anniversary - timedelta(days=1)


def _rows(today: date) -> list[dict[str, str]]:
    pledgors = {
        key: (name, body + _credit_check_char(body), region) for key, name, body, region in PLEDGORS
    }
    loans: dict[str, dict[str, str]] = {}
    for (
        reg,
        who,
        on,
        secured,
        loan_no,
        principal,
        rate,
        outstanding,
        interest,
        defaulted,
        npl,
        pool,
    ) in LOANS:
        name, code, region = pledgors[who]
        loans[reg] = {
            "pledge_registration_no": reg,
            "pledge_registered_on": on,
            "secured_amount": f"{secured:,}",
            "pledgor_name": name,
            "pledgor_credit_code": code,
            "pledgor_region": region,
            "loan_no": loan_no,
            "principal": f"{principal:,}",
            "rate": rate,
            "outstanding_principal": f"{outstanding:,}",
            "outstanding_interest": f"{interest:,}",
            "disbursed_on": on,
            "default_date": defaulted or "",
            "npl_class": npl,
            "pool_code": pool,
        }
    rows: list[dict[str, str]] = []
    for reg, digit, serial, filed_text, title, abstract, ipc, licences in PATENTS:
        if filed_text:
            filed = date.fromisoformat(filed_text)
            paid = _paid_through(filed, today)
        else:  # the utility model whose ten years end in 60 days
            filed = add_years(today + timedelta(days=61), -10)
            paid = add_years(filed, 10) - timedelta(days=1)
        if serial == 204_557:  # the lidar patent: the pledgor stopped paying 45 days ago
            paid = today - timedelta(days=45)
        owner = loans[reg]["pledgor_name"]
        rows.append(
            loans[reg]
            | {
                "asset_kind": "专利",
                "asset_number": _patent_number(filed, digit, serial),
                "title": title,
                "abstract": abstract,
                "filing_date": filed.isoformat(),
                "ipc_codes": ipc,
                "owners": owner if serial != 155_409 else f"{owner};浙江大学",
                "legal_status": "有效",
                "annuity_paid_through": paid.isoformat(),
                "licences": licences,
            }
        )
    for reg, kind, number, title, classes, valid_until, registered_on in OTHER_ASSETS:
        rows.append(
            loans[reg]
            | {
                "asset_kind": kind,
                "asset_number": number,
                "title": title,
                "owners": loans[reg]["pledgor_name"],
                "legal_status": "有效",
                "nice_classes": classes,
                "valid_until": valid_until,
                "registered_on": registered_on,
            }
        )
    return rows


def demo_csv(at: datetime) -> bytes:
    """The demo portfolio as a CSV with Chinese headers, as a bank's Excel would save it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.header for c in csv_format.COLUMNS])
    for row in _rows(business_day(at)):
        writer.writerow([row.get(c.key, "") for c in csv_format.COLUMNS])
    return out.getvalue().encode("gb18030")


async def seed_demo_portfolio(act: Act) -> dict[str, Any]:
    """Import the demo portfolio as the bank's user `act` acts for, as an upload through
    the API would be; returns the import's counts."""
    data = StartImport(
        content=demo_csv(act.ctx.clock.now()), filename="演示质押清单.csv", via="demo"
    )
    result = await import_now(act, data)
    defaulted = sum(1 for loan in LOANS if loan[9])
    return {
        "import_id": result.import_id,
        "rows": result.rows,
        "pledgors": result.pledgors_created + result.pledgors_updated,
        "assets": result.assets_created + result.assets_updated,
        "pledges": result.pledges_created + result.pledges_updated,
        "loans": result.loans_created + result.loans_updated,
        "defaulted_loans": defaulted,
        "flags_raised": result.flags_raised,
    }
