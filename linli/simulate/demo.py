"""The demo brand 麦香邻里: seeded on an empty database by ``make run`` / ``linli seed-demo``.

Everything goes through the domains' service functions, so the demo's history is in the event log like
any real brand's."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from linli.catalog import service as catalog
from linli.catalog.schemas import ProductCreate
from linli.community import service as community
from linli.community.schemas import CommunityCreate, PickupPointCreate, StoreCreate
from linli.core.clock import SHANGHAI, utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.identity import service as identity
from linli.identity.models import Role, User
from linli.live import service as live
from linli.live.models import SessionStatus
from linli.live.schemas import LineupItemCreate, LiveSessionCreate


@dataclass(frozen=True)
class DemoAccount:
    role: Role
    phone: str
    nickname: str


DEMO_ACCOUNTS = (
    DemoAccount(Role.operator, "13900000001", "王运营"),
    DemoAccount(Role.host, "13900000002", "小麦主播"),
    DemoAccount(Role.leader, "13900000003", "李姐"),
    DemoAccount(Role.customer, "13900000004", "张哥"),
)

STORES = (
    ("麦香邻里·人民广场店", "黄浦区南京西路 88 号", "黄浦区", "021-63000001"),
    ("麦香邻里·徐汇滨江店", "徐汇区龙腾大道 2555 号", "徐汇区", "021-63000002"),
    ("麦香邻里·静安寺店", "静安区愚园路 68 号", "静安区", "021-63000003"),
)

# (community, address, district, pickup point, leader nickname)
COMMUNITIES = (
    ("阳光花园", "徐汇区宛平南路 600 弄", "徐汇区", "阳光花园东门便利店", "李姐"),
    ("翠湖天地", "黄浦区马当路 168 弄", "黄浦区", "翠湖天地物业服务中心", "陈阿姨"),
    ("锦绣江南", "闵行区古美路 1500 弄", "闵行区", "锦绣江南北门快递驿站", "周叔"),
    ("梧桐苑", "静安区武定路 900 弄", "静安区", "梧桐苑 3 号楼门卫室", "吴姐"),
    ("康桥半岛", "浦东新区秀沿路 1388 弄", "浦东新区", "康桥半岛会所前台", "郑哥"),
    ("绿地香樟园", "长宁区古北路 1000 弄", "长宁区", "香樟园南门水果店", "孙姐"),
    ("世纪公园小区", "浦东新区锦绣路 2000 弄", "浦东新区", "世纪公园小区活动室", "赵老师"),
    ("滨江半岛", "徐汇区龙华中路 700 弄", "徐汇区", "滨江半岛 1 号门岗", "钱阿姨"),
)

# (name, store price fen, description, storage, shelf life, colour)
PRODUCTS = (
    (
        "春季限定青团",
        3000,
        "艾草鲜榨汁揉面,咸蛋黄肉松与红豆沙双馅,软糯不粘牙。中央厨房当日现做,次日上午送达自提点。",
        "0–4°C 冷藏",
        "冷藏 3 天",
        (86, 140, 60),
    ),
    ("麦香全麦吐司", 1800, "100% 全麦粉,低糖配方,早餐好搭档。", "常温阴凉处", "常温 3 天", (196, 150, 92)),
    ("手作奶油泡芙", 2200, "法式酥皮,动物奶油现打,一盒 6 只。", "0–4°C 冷藏", "冷藏 2 天", (235, 205, 150)),
    ("桂花酒酿小圆子", 1600, "桂花香、酒酿甜,开袋加热即食。", "0–4°C 冷藏", "冷藏 5 天", (240, 200, 90)),
    ("红豆麻薯", 1200, "北海道红豆,糯米麻薯皮,一盒 4 只。", "常温阴凉处", "常温 2 天", (160, 60, 70)),
)

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


def product_photo(name: str, colour: tuple[int, int, int]) -> bytes:
    """A clean studio-style placeholder photo: the product as a soft round on a warm backdrop, named."""
    size = 800
    image = Image.new("RGB", (size, size), (250, 244, 235))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        shade = int(18 * y / size)
        draw.line([(0, y), (size, y)], fill=(250 - shade, 244 - shade, 235 - shade))
    draw.ellipse((170, 560, 630, 640), fill=(225, 215, 200))
    draw.ellipse((190, 190, 610, 600), fill=colour)
    highlight = tuple(min(255, c + 45) for c in colour)
    draw.ellipse((260, 240, 400, 340), fill=highlight)
    font = _font(56)
    bbox = draw.textbbox((0, 0), name, font=font)
    draw.text(((size - (bbox[2] - bbox[0])) / 2, 660), name, fill=(60, 45, 30), font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def _is_empty(db: Database) -> bool:
    async with db.sessionmaker() as session:
        return not await session.scalar(select(func.count()).select_from(User))


async def seed_demo_brand(settings: Settings, *, force: bool = False, console: Console | None = None) -> bool:
    """Seed the demo brand in one transaction; does nothing (returns False) on a non-empty database."""
    db = Database(settings.database_url, pool=False)
    try:
        if not force and not await _is_empty(db):
            return False
        async with db.sessionmaker() as session:
            with Progress(console=console or Console(), transient=True) as progress:
                task = progress.add_task("Seeding 麦香邻里", total=5)
                users = {
                    a.role: await identity.ensure_user(session, a.phone, nickname=a.nickname, roles=(a.role,))
                    for a in DEMO_ACCOUNTS
                }
                operator = users[Role.operator]
                progress.advance(task)

                for name, address, district, phone in STORES:
                    await community.create_store(
                        session,
                        StoreCreate(
                            name=name,
                            address=address,
                            district=district,
                            phone=phone,
                            opening_hours="07:30–21:00",
                        ),
                        actor_id=operator.id,
                    )
                progress.advance(task)

                first_community_id = None
                for index, (name, address, district, point, leader_name) in enumerate(COMMUNITIES):
                    created = await community.create_community(
                        session,
                        CommunityCreate(name=name, address=address, district=district),
                        actor_id=operator.id,
                    )
                    first_community_id = first_community_id or created.id
                    leader = (
                        users[Role.leader]
                        if index == 0
                        else await identity.ensure_user(
                            session, f"1390000{1000 + index:04d}", nickname=leader_name, roles=(Role.leader,)
                        )
                    )
                    await community.create_pickup_point(
                        session,
                        PickupPointCreate(
                            community_id=created.id,
                            name=point,
                            address=address,
                            opening_hours="08:00–20:00",
                            leader_id=leader.id,
                        ),
                        actor_id=operator.id,
                    )
                assert first_community_id is not None
                await community.join_community(session, users[Role.customer].id, first_community_id, "chosen")
                await community.join_community(session, users[Role.leader].id, first_community_id, "chosen")
                progress.advance(task)

                products = []
                for name, price, description, storage, shelf, colour in PRODUCTS:
                    product = await catalog.create_product(
                        session,
                        ProductCreate(
                            name=name,
                            description=description,
                            store_price_fen=price,
                            storage_note=storage,
                            shelf_life_note=shelf,
                        ),
                        actor_id=operator.id,
                    )
                    await catalog.add_product_image(
                        session,
                        product.id,
                        product_photo(name, colour),
                        settings=settings,
                        actor_id=operator.id,
                    )
                    products.append(product)
                progress.advance(task)

                tomorrow = (utcnow().astimezone(SHANGHAI) + timedelta(days=1)).date()
                start = datetime.combine(tomorrow, time(19, 30), tzinfo=SHANGHAI)
                festival = await live.create_session(
                    session,
                    LiveSessionCreate(
                        title="春日青团节",
                        description="中央厨房直播现做青团,直播间专享价 ¥25(门店 ¥30)。"
                        "本社区满 50 份,次日上午 10 点前免费送到小区自提点。",
                        host_id=users[Role.host].id,
                        scheduled_start=start,
                    ),
                    actor=operator,
                )
                lineup = (
                    (products[0], 2500, 5000, 10),
                    (products[2], 1800, 600, 5),
                    (products[4], 990, 800, 6),
                )
                for product, price, stock, limit in lineup:
                    await live.add_lineup_item(
                        session,
                        festival,
                        LineupItemCreate(
                            product_id=product.id, live_price_fen=price, stock=stock, per_user_limit=limit
                        ),
                        actor=operator,
                    )
                await live.transition_session(session, festival, SessionStatus.scheduled, operator)
                progress.advance(task)
            await session.commit()
        return True
    finally:
        await db.dispose()


async def grant_operator(settings: Settings, phone: str, nickname: str) -> int:
    db = Database(settings.database_url, pool=False)
    try:
        async with db.sessionmaker() as session:
            user = await identity.ensure_user(session, phone, nickname=nickname, roles=(Role.operator,))
            await session.commit()
            return user.id
    finally:
        await db.dispose()


def print_demo_accounts(console: Console) -> None:
    table = Table(title="麦香邻里 demo accounts — log in at /login; the SMS code appears in this log")
    table.add_column("role")
    table.add_column("phone")
    table.add_column("name")
    for account in DEMO_ACCOUNTS:
        table.add_row(account.role.value, account.phone, account.nickname)
    console.print(table)
