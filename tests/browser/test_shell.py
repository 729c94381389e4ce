"""What a person does first: log in with an SMS code, add a product in the admin console, open the home
page on a phone."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, login

OPERATOR = "13900000001"
CUSTOMER = "13900000004"


def test_operator_logs_in_with_a_code_and_creates_a_product(desktop_page: Page, server: Server) -> None:
    page = desktop_page
    login(page, server, OPERATOR, next_path="/admin/products")
    expect(page).to_have_url(re.compile(r"/admin/products"))
    expect(page.get_by_test_id("current-user")).to_have_text("王运营")

    name = f"樱花麻薯{uuid.uuid4().hex[:4]}"
    page.get_by_test_id("new-item").click()
    page.locator("[name=name]").fill(name)
    page.locator("[name=store_price_fen]").fill("19.90")
    page.locator("[name=description]").fill("春日限定,樱花馅")
    page.get_by_test_id("save").click()
    page.wait_for_load_state("networkidle")

    page.goto(f"{server.base_url}/admin/products?q={name}")
    listing = page.get_by_test_id("admin-list")
    expect(listing).to_contain_text(name)
    expect(listing).to_contain_text("¥19.90")


def test_bad_product_form_shows_the_error_and_saves_nothing(desktop_page: Page, server: Server) -> None:
    page = desktop_page
    login(page, server, OPERATOR, next_path="/admin/products/new")
    name = f"负价商品{uuid.uuid4().hex[:4]}"
    page.locator("[name=name]").fill(name)
    page.locator("[name=store_price_fen]").fill("-5")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("error-store_price_fen")).to_be_visible()
    page.goto(f"{server.base_url}/admin/products?q={name}")
    expect(page.get_by_test_id("admin-list")).to_be_visible()
    expect(page.get_by_test_id("admin-list").get_by_role("link", name=name)).to_have_count(0)


def test_neighbour_home_renders_in_chinese_on_a_phone(phone_page: Page, server: Server) -> None:
    page = phone_page
    page.goto(f"{server.base_url}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_test_id("home-greeting")).to_have_text("欢迎来到麦香邻里")
    # Other browser tests share the server and open sessions of their own: find the demo festival's card.
    card = page.get_by_test_id("session-card").filter(has_text="春日青团节")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("¥25")
    expect(card).to_contain_text("预告")
    # Nothing overflows the phone's width.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390

    login(page, server, CUSTOMER)
    expect(page.get_by_test_id("home-greeting")).to_have_text("你好,张哥")
    expect(page.get_by_test_id("home-community")).to_contain_text("阳光花园")


def test_english_switch(phone_page: Page, server: Server) -> None:
    page = phone_page
    page.goto(f"{server.base_url}/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("home-greeting")).to_have_text("Welcome to Maixiang Neighbours")
    page.goto(f"{server.base_url}/")  # the choice sticks
    expect(page.locator("html")).to_have_attribute("lang", "en")
