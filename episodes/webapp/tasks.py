"""The web task registry: what to ask, where to start, and how success is read from the recorded page state.

Why plain data: the same tasks serve the README's demo episode, the evaluation suite and (later) a synthetic
data generator, so they must be readable without running anything. A task's ``check`` reads ONLY the state
dict the pages recorded on the server (``WebAppServer.state(session)``), never a screenshot or the DOM, and
never raises: a state of any shape gives ``True`` or ``False``.

Each task also carries a scripted ``solution``: the actions a person would take, as ``Step(selector, kind,
value)`` tuples, so a test can prove every task is solvable and that its check turns true only at the end.
``wrong`` is a plausible mistake (the wrong option, a wrong password) whose check must stay false. Step kinds
mirror the agent's action vocabulary (``actuators.actions``) and are meant to be performed by pixels, as the
agent does:

- ``("css", "click", None)``: click the centre of the element; ``value="fx,fy"`` clicks at that fraction of
  its box instead (``"0.8,0.5"`` is 80% across a slider track).
- ``("css", "type", "text")``: click the element, then type the text with the keyboard.
- ``(None, "press", "Enter")``: press a key (Playwright key names).
- ``("css", "select", "Label")``: choose the option with this visible label in the native ``<select>``.
- ``("css", "scroll", "down")``: scroll the page with the mouse wheel until the element is in view.

A click that opens a new tab moves the rest of the solution to that tab, as the browser actuator does.

``steps_needed`` is the number of agent actions the shortest solution takes (``len(solution)``);
``max_steps`` is the episode's step budget, with room for a few mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

StepKind = str
STEP_KINDS: frozenset[str] = frozenset({"click", "type", "press", "select", "scroll"})


class Step(NamedTuple):
    """One scripted action: a CSS selector (``None`` for a key press), the kind, and its value."""

    selector: str | None
    kind: StepKind
    value: str | None = None


@dataclass(frozen=True)
class WebTask:
    """A task on the bundled site. ``check(state)`` says whether the recorded state shows it done."""

    name: str
    instruction: str
    start_path: str
    check: Callable[[dict[str, Any]], bool]
    max_steps: int
    steps_needed: int
    solution: tuple[Step, ...]
    wrong: tuple[Step, ...] = ()
    language: str = "en"
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.start_path.startswith("/"):
            raise ValueError(f"task {self.name}: start_path must begin with '/', got {self.start_path!r}")
        for step in (*self.solution, *self.wrong):
            if step.kind not in STEP_KINDS:
                raise ValueError(f"task {self.name}: unknown step kind {step.kind!r}; use {sorted(STEP_KINDS)}")
        if self.steps_needed != len(self.solution) or self.max_steps < self.steps_needed:
            raise ValueError(f"task {self.name}: steps_needed must equal len(solution) and max_steps be >= it")

    def is_done(self, state: Any) -> bool:
        """``check`` that never raises: anything it cannot read counts as not done."""
        try:
            return bool(self.check(state)) if isinstance(state, dict) else False
        except Exception:  # a malformed state is "not done", never a crash of the evaluation
            return False


# -- reading state safely ---------------------------------------------------------------------------------
def get(state: Any, dotted: str, default: Any = None) -> Any:
    """``state["a"]["b"]`` for ``"a.b"``, or ``default`` wherever the shape is not as expected."""
    node = state
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def norm(value: Any) -> str:
    """Lower case with runs of whitespace folded: how a person would compare typed text."""
    return " ".join(value.split()).casefold() if isinstance(value, str) else ""


def is_true(state: Any, dotted: str) -> bool:
    return get(state, dotted) is True


def _budget(steps: int) -> int:
    """Room for a few mistakes and recoveries, but not for wandering the whole site."""
    return 2 * steps + 4


def _task(name: str, instruction: str, start_path: str, check: Callable[[dict[str, Any]], bool],
          solution: list[Step], wrong: list[Step] | None = None, language: str = "en",
          tags: tuple[str, ...] = ()) -> WebTask:
    return WebTask(name=name, instruction=instruction, start_path=start_path, check=check,
                   max_steps=_budget(len(solution)), steps_needed=len(solution), solution=tuple(solution),
                   wrong=tuple(wrong or ()), language=language, tags=tags)


# -- checks -----------------------------------------------------------------------------------------------
def _search_cogvlm(s: dict[str, Any]) -> bool:
    return (get(s, "paper.opened") == "cogvlm" and "cogvlm" in norm(get(s, "paper.from_query"))
            and "cogvlm" in norm(get(s, "search.query")))


def _login(s: dict[str, Any]) -> bool:
    return is_true(s, "login.ok") and get(s, "login.user") == "alice"


ADDRESS = {"name": "Jane Doe", "email": "jane.doe@example.com", "street": "12 Harbor Street",
           "city": "Springfield", "zip": "49007"}


def _address(s: dict[str, Any]) -> bool:
    return is_true(s, "address_form.submitted") and all(
        norm(get(s, f"address_form.{k}")) == norm(v) for k, v in ADDRESS.items())


def _country(s: dict[str, Any]) -> bool:
    return is_true(s, "shipping.saved") and get(s, "shipping.country") == "CA"


def _speed(s: dict[str, Any]) -> bool:
    return is_true(s, "shipping.saved") and get(s, "shipping.speed") == "express"


def _settings(s: dict[str, Any]) -> bool:
    return (is_true(s, "settings.saved") and is_true(s, "settings.email_notifications")
            and is_true(s, "settings.dark_mode") and is_true(s, "settings.push_notifications")
            and get(s, "settings.weekly_summary") is False)


def _cart(s: dict[str, Any]) -> bool:
    cart = get(s, "cart")
    if not isinstance(cart, dict):
        return False
    wanted = cart.get("aurora-lamp")
    others = [q for k, q in cart.items() if k != "aurora-lamp" and isinstance(q, (int, float)) and q > 0]
    return isinstance(wanted, int) and not isinstance(wanted, bool) and wanted >= 1 and not others


def _docs(s: dict[str, Any]) -> bool:
    return get(s, "docs_feedback") == "yes"


def _terms(s: dict[str, Any]) -> bool:
    return is_true(s, "terms.accepted")


def _modal(s: dict[str, Any]) -> bool:
    return get(s, "cookies") == "rejected" and get(s, "article_opened") == "library"


def _booking(s: dict[str, Any]) -> bool:
    return (is_true(s, "booking.booked") and get(s, "booking.checkin") == "2024-06-14"
            and get(s, "booking.nights") == 3 and get(s, "booking.guests") == 2)


TODO_START = ("pay electricity bill", "call the dentist", "water the plants")


def _todo_items(s: dict[str, Any]) -> list[tuple[str, bool]]:
    items = get(s, "todo.items")
    if not isinstance(items, list):
        return []
    return [(norm(i.get("text")), i.get("done") is True) for i in items if isinstance(i, dict)]


def _todo_add(s: dict[str, Any]) -> bool:
    texts = [t for t, _ in _todo_items(s)]
    return "buy milk" in texts and all(t in texts for t in TODO_START)


def _todo_done(s: dict[str, Any]) -> bool:
    items = _todo_items(s)
    done = {t for t, d in items if d}
    return done == {"call the dentist"} and all(t in {x for x, _ in items} for t in TODO_START)


def _two_factor(s: dict[str, Any]) -> bool:
    return is_true(s, "security.two_factor")


def _annual(s: dict[str, Any]) -> bool:
    return get(s, "billing.plan") == "annual"


def _volume(s: dict[str, Any]) -> bool:
    return get(s, "player.volume") == 80


def _zh_search(s: dict[str, Any]) -> bool:
    return (get(s, "zh_opened.id") == "beijing-weather" and "天气" in norm(get(s, "zh_opened.from_query"))
            and "天气" in norm(get(s, "zh_search.query")))


def _zh_settings(s: dict[str, Any]) -> bool:
    return (is_true(s, "zh_settings.saved") and is_true(s, "zh_settings.notifications")
            and get(s, "zh_settings.font_size") == "large" and get(s, "zh_settings.language") == "zh-CN")


# -- the registry -----------------------------------------------------------------------------------------
_TASKS = [
    _task("search-cogvlm", "Search for CogVLM and open the first result", "/search/index.html", _search_cogvlm,
          [Step("#search-input", "type", "CogVLM"), Step("#search-button", "click"), Step("#result-1", "click")],
          wrong=[Step("#search-input", "type", "CogVLM"), Step(None, "press", "Enter"), Step("#result-2", "click")],
          tags=("search",)),
    _task("login", "Log in with the username alice and the password sunflower42", "/account/login.html", _login,
          [Step("#username", "type", "alice"), Step("#password", "type", "sunflower42"),
           Step("#login-button", "click")],
          wrong=[Step("#username", "type", "alice"), Step("#password", "type", "sunflower24"),
                 Step("#login-button", "click")],
          tags=("form", "password")),
    _task("fill-address",
          "Fill in the delivery address form: name Jane Doe, email jane.doe@example.com, street 12 Harbor Street, "
          "city Springfield, ZIP code 49007, then submit it", "/forms/address.html", _address,
          [Step("#full-name", "type", ADDRESS["name"]), Step("#email", "type", ADDRESS["email"]),
           Step("#street", "type", ADDRESS["street"]), Step("#city", "type", ADDRESS["city"]),
           Step("#zip", "type", ADDRESS["zip"]), Step("#submit-address", "click")],
          wrong=[Step("#full-name", "type", ADDRESS["name"]), Step("#email", "type", "jane.doe@example.org"),
                 Step("#street", "type", ADDRESS["street"]), Step("#city", "type", ADDRESS["city"]),
                 Step("#zip", "type", ADDRESS["zip"]), Step(None, "press", "Enter")],
          tags=("form",)),
    _task("select-country", "Change the shipping country to Canada and save", "/forms/shipping.html", _country,
          [Step("#country", "select", "Canada"), Step("#save-shipping", "click")],
          wrong=[Step("#country", "select", "Cameroon"), Step("#save-shipping", "click")],
          tags=("select",)),
    _task("select-shipping-speed", "Switch my shipping to Express (2 days) and save it", "/forms/shipping.html",
          _speed, [Step("#speed", "select", "Express (2 days) — $12"), Step("#save-shipping", "click")],
          wrong=[Step("#speed", "select", "Overnight — $29"), Step("#save-shipping", "click")],
          tags=("select",)),
    _task("settings-toggles", "Turn on email notifications and dark mode, then save the settings",
          "/settings/index.html", _settings,
          [Step("#email-notifications", "click"), Step("#dark-mode-switch", "click"),
           Step("#save-settings", "click")],
          wrong=[Step("#weekly-summary", "click"), Step("#dark-mode-switch", "click"),
                 Step("#save-settings", "click")],
          tags=("checkbox", "toggle")),
    _task("shop-add-to-cart", "Go to the shop, open the Aurora Desk Lamp and add it to the cart", "/", _cart,
          [Step("#app-shop", "click"), Step("#product-aurora-lamp", "click"), Step("#add-to-cart", "click")],
          wrong=[Step("#app-shop", "click"), Step("#product-nimbus-lamp", "click"), Step("#add-to-cart", "click")],
          tags=("navigation", "multi-page")),
    _task("docs-new-tab",
          "Open the developer documentation from the Help Center (it opens in a new tab) and answer Yes to "
          "'Was this page helpful?'", "/help/index.html", _docs,
          [Step("#docs-link", "click"), Step("#helpful-yes", "click")],
          wrong=[Step("#docs-link", "click"), Step("#helpful-no", "click")],
          tags=("new-tab",)),
    _task("accept-terms", "Scroll to the bottom of the Terms of Service and click 'Accept and continue'",
          "/legal/terms.html", _terms,
          [Step("#accept-terms", "scroll", "down"), Step("#accept-terms", "click")],
          wrong=[Step("#decline-terms", "click")],
          tags=("scroll",)),
    _task("dismiss-cookies", "Reject all cookies in the pop-up, then open the article about the new library",
          "/news/index.html", _modal,
          [Step("#reject-cookies", "click"), Step("#story-library", "click")],
          wrong=[Step("#accept-cookies", "click"), Step("#story-library", "click")],
          tags=("modal",)),
    _task("book-hotel", "Book a room for 2 guests, checking in on 2024-06-14 for 3 nights",
          "/travel/booking.html", _booking,
          [Step("#checkin", "type", "2024-06-14"), Step("#nights", "type", "3"), Step("#guests", "type", "2"),
           Step("#book-button", "click")],
          wrong=[Step("#checkin", "type", "2024-06-15"), Step("#nights", "type", "3"),
                 Step("#guests", "type", "2"), Step("#book-button", "click")],
          tags=("date", "number")),
    _task("todo-add", "Add 'Buy milk' to my to-do list", "/todo/index.html", _todo_add,
          [Step("#new-item", "type", "Buy milk"), Step("#add-item", "click")], tags=("todo",)),
    _task("todo-complete", "Mark 'Call the dentist' as done in my to-do list", "/todo/index.html", _todo_done,
          [Step("#item-call-the-dentist", "click")], wrong=[Step("#item-water-the-plants", "click")],
          tags=("todo", "checkbox")),
    _task("two-factor", "Turn on two-factor authentication in the Security tab of my account settings",
          "/account/settings.html", _two_factor,
          [Step("#tab-security", "click"), Step("#switch-2fa", "click")],
          wrong=[Step("#tab-security", "click"), Step("#switch-alerts", "click")],
          tags=("tabs", "toggle")),
    _task("billing-annual", "Switch my subscription to the annual plan", "/account/settings.html", _annual,
          [Step("#tab-billing", "click"), Step("#plan-annual", "click"), Step("#save-plan", "click")],
          wrong=[Step("#tab-billing", "click"), Step("#save-plan", "click")],
          tags=("tabs", "radio")),
    _task("set-volume", "Set the music volume to 80", "/media/player.html", _volume,
          [Step("#volume", "click", "0.8,0.5")], wrong=[Step("#volume", "click", "0.5,0.5")],
          tags=("slider",)),
    _task("zh-search", "搜索“天气预报”，然后打开第一个搜索结果", "/zh/search.html", _zh_search,
          [Step("#zh-search-input", "type", "天气预报"), Step("#zh-search-button", "click"),
           Step("#zh-result-1", "click")],
          wrong=[Step("#zh-search-input", "type", "天气预报"), Step("#zh-search-button", "click"),
                 Step("#zh-result-2", "click")],
          language="zh", tags=("search", "chinese")),
    _task("zh-settings", "在设置页面打开消息通知，把字体大小改成“大”，然后保存设置", "/zh/settings.html",
          _zh_settings,
          [Step("#zh-notify-switch", "click"), Step("#zh-font-size", "select", "大"), Step("#zh-save", "click")],
          wrong=[Step("#zh-notify-switch", "click"), Step("#zh-font-size", "select", "特大"),
                 Step("#zh-save", "click")],
          language="zh", tags=("settings", "chinese", "select")),
]

WEB_TASKS: dict[str, WebTask] = {t.name: t for t in _TASKS}
"""Every bundled web task by name, in a stable order (the evaluation suite runs them in this order)."""

if len(WEB_TASKS) != len(_TASKS):  # a duplicate name would silently drop a task
    raise RuntimeError("duplicate web task names in episodes.webapp.tasks")
