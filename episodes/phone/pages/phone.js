/* The simulated phone's UI logic. Input arrives as real touch and key events (dispatched by the simulator through
   Chromium's input pipeline), so taps hit whatever element is really under the finger. window.phone is the
   simulator's handle: state() for checks, reset()/set() for episodes, and the system keys (home, back, ...). */
"use strict";

const DEFAULTS = {
  dark_mode: false, brightness: 60, adaptive_brightness: true, auto_rotate: false, wifi: true,
  airplane_mode: false, language: "en-US", current_screen: "home", screen_on: true, volume: 8,
  clock: "12:00", date: "Mon, Jan 1", search_query: "", note_text: "", browser_url: "", calc_display: "0",
};
const S = Object.assign({}, DEFAULTS);
let stack = ["home"];
let popup = null;
let recents = [];
let wifiBeforeAirplane = true;
let calcExpr = "";

const LANGUAGES = [
  ["en-US", "English (United States)"], ["zh-CN", "中文 (简体)"], ["zh-TW", "中文 (繁體)"],
  ["es-ES", "Español (España)"], ["fr-FR", "Français (France)"], ["de-DE", "Deutsch (Deutschland)"],
  ["ja-JP", "日本語"], ["ko-KR", "한국어"], ["pt-BR", "Português (Brasil)"], ["ru-RU", "Русский"],
  ["it-IT", "Italiano (Italia)"], ["nl-NL", "Nederlands"], ["pl-PL", "Polski"], ["tr-TR", "Türkçe"],
  ["vi-VN", "Tiếng Việt"], ["id-ID", "Bahasa Indonesia"], ["sv-SE", "Svenska"], ["uk-UA", "Українська"],
  ["ar-EG", "العربية"],
];

const I18N = {
  "zh-CN": { settings: "设置", search_settings: "搜索设置", network: "网络和互联网", display: "显示", system: "系统",
    languages: "语言", dark_theme: "深色主题", brightness: "亮度", wifi: "WLAN", airplane: "飞行模式", apps: "应用",
    battery: "电池", sound: "声音和振动", about: "关于手机", notes: "笔记", clock: "时钟", browser: "浏览器",
    calculator: "计算器", no_results: "无结果", web_search: "搜索网页", clear_all: "全部清除" },
  "zh-TW": { settings: "設定", search_settings: "搜尋設定", network: "網路和網際網路", display: "螢幕", system: "系統",
    languages: "語言", dark_theme: "深色主題", brightness: "亮度", wifi: "Wi‑Fi", airplane: "飛航模式", apps: "應用程式",
    no_results: "沒有結果" },
  "es-ES": { settings: "Ajustes", search_settings: "Buscar en Ajustes", network: "Redes e Internet", display: "Pantalla",
    system: "Sistema", languages: "Idiomas", dark_theme: "Tema oscuro", brightness: "Nivel de brillo", wifi: "Wi‑Fi",
    airplane: "Modo avión", apps: "Aplicaciones", battery: "Batería", about: "Información del teléfono",
    notes: "Notas", clock: "Reloj", browser: "Navegador", calculator: "Calculadora", no_results: "No hay resultados" },
  "fr-FR": { settings: "Paramètres", search_settings: "Rechercher dans les paramètres", network: "Réseau et Internet",
    display: "Affichage", system: "Système", languages: "Langues", dark_theme: "Thème sombre",
    brightness: "Niveau de luminosité", wifi: "Wi‑Fi", airplane: "Mode Avion", apps: "Applications",
    battery: "Batterie", notes: "Notes", clock: "Horloge", browser: "Navigateur", calculator: "Calculatrice",
    no_results: "Aucun résultat" },
  "de-DE": { settings: "Einstellungen", search_settings: "Einstellungen durchsuchen", network: "Netzwerk & Internet",
    display: "Display", system: "System", languages: "Sprachen", dark_theme: "Dunkles Design",
    brightness: "Helligkeit", wifi: "WLAN", airplane: "Flugmodus", apps: "Apps", battery: "Akku",
    notes: "Notizen", clock: "Uhr", browser: "Browser", calculator: "Rechner", no_results: "Keine Ergebnisse" },
  "ja-JP": { settings: "設定", search_settings: "設定を検索", network: "ネットワークとインターネット", display: "ディスプレイ",
    system: "システム", languages: "言語", dark_theme: "ダークモード", brightness: "明るさのレベル", wifi: "Wi‑Fi",
    airplane: "機内モード", apps: "アプリ", no_results: "結果なし" },
};

const ICONS = {
  gear: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="3.2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>',
  wifi: '<svg viewBox="0 0 24 24"><path d="M2 9a15 15 0 0 1 20 0M5.5 12.5a10 10 0 0 1 13 0M9 16a5 5 0 0 1 6 0" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><circle cx="12" cy="19" r="1.6" fill="currentColor"/></svg>',
  airplane: '<svg viewBox="0 0 24 24"><path d="M21 16v-2l-8-5V3.5a1.5 1.5 0 0 0-3 0V9l-8 5v2l8-2.5V19l-2 1.5V22l3.5-1 3.5 1v-1.5L13 19v-5.5z" fill="currentColor"/></svg>',
  signal: '<svg viewBox="0 0 24 24"><path d="M3 21h3v-4H3zM8 21h3v-8H8zM13 21h3V9h-3zM18 21h3V4h-3z" fill="currentColor"/></svg>',
  battery: '<svg viewBox="0 0 24 24"><rect x="7" y="3" width="10" height="19" rx="2" fill="currentColor"/><rect x="10" y="1" width="4" height="2" fill="currentColor"/></svg>',
  globe: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/><path d="M3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>',
  clock: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 7v5l3.5 2" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
  calc: '<svg viewBox="0 0 24 24"><rect x="5" y="2.5" width="14" height="19" rx="2.5" fill="none" stroke="currentColor" stroke-width="2"/><path d="M8 7h8M8.5 12h1M11.5 12h1M14.5 12h1M8.5 16h1M11.5 16h1M14.5 16h1" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
  note: '<svg viewBox="0 0 24 24"><path d="M5 3h10l4 4v14H5z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M8 11h8M8 15h8M8 7h5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
  back: '<svg viewBox="0 0 24 24"><path d="M20 12H5M11 5l-7 7 7 7" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  dot: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="8" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="12" cy="12" r="3" fill="currentColor"/></svg>',
  dark: '<svg viewBox="0 0 24 24"><path d="M20 14.5A8.5 8.5 0 0 1 9.5 4 8.5 8.5 0 1 0 20 14.5z" fill="currentColor"/></svg>',
  brightness: '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="4.5" fill="currentColor"/><path d="M12 1.5v3M12 19.5v3M1.5 12h3M19.5 12h3M4.6 4.6l2.1 2.1M17.3 17.3l2.1 2.1M4.6 19.4l2.1-2.1M17.3 6.7l2.1-2.1" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
  language: '<svg viewBox="0 0 24 24"><path d="M4 5h9M8.5 3v2M6 5c1 4 4 7 7 8M11 5c-1 4-4 7-7 8M12 21l4.5-10L21 21M13.5 18h6" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"/></svg>',
};
const ROW_ICON = { wifi: "wifi", airplane: "airplane", signal: "signal", brightness: "brightness", dark: "dark", language: "language" };

const APPS = [
  { id: "settings", label: "Settings", i18n: "settings", icon: "gear", color: "#5f6368", fg: "#ffffff", screen: "settings" },
  { id: "browser", label: "Browser", i18n: "browser", icon: "globe", color: "#1a73e8", fg: "#ffffff", screen: "browser" },
  { id: "notes", label: "Notes", i18n: "notes", icon: "note", color: "#f9ab00", fg: "#ffffff", screen: "notes" },
  { id: "calculator", label: "Calculator", i18n: "calculator", icon: "calc", color: "#188038", fg: "#ffffff", screen: "calculator" },
  { id: "clock", label: "Clock", i18n: "clock", icon: "clock", color: "#8430ce", fg: "#ffffff", screen: "clock" },
];

const SETTINGS_MAIN = [
  { id: "network", i18n: "network", title: "Network & internet", sub: "Wi‑Fi, airplane mode, hotspot", icon: "wifi",
    kw: "wifi wi-fi wlan wireless airplane aeroplane flight mode internet hotspot mobile data" },
  { id: "devices", title: "Connected devices", sub: "Bluetooth, pairing", kw: "bluetooth pair nfc cast" },
  { id: "apps", i18n: "apps", title: "Apps", sub: "Recent apps, default apps", kw: "applications default permissions" },
  { id: "notifications", title: "Notifications", sub: "Notification history, conversations", kw: "alerts" },
  { id: "battery", i18n: "battery", title: "Battery", sub: "100%", kw: "power saver charge" },
  { id: "storage", title: "Storage", sub: "34% used - 84 GB free", kw: "space disk memory" },
  { id: "sound", i18n: "sound", title: "Sound & vibration", sub: "Volume, haptics, Do Not Disturb", kw: "volume ringtone mute vibrate" },
  { id: "display", i18n: "display", title: "Display", sub: "Dark theme, font size, brightness", icon: "brightness",
    kw: "dark theme mode night light brightness screen font" },
  { id: "wallpaper", title: "Wallpaper & style", sub: "Colors, themed icons, app grid", kw: "wallpaper colors style" },
  { id: "accessibility", title: "Accessibility", sub: "Display, interaction, audio", kw: "talkback magnification" },
  { id: "security", title: "Security & privacy", sub: "App security, device lock, permissions", kw: "lock pin password privacy" },
  { id: "location", title: "Location", sub: "On - 3 apps have access to location", kw: "gps" },
  { id: "emergency", title: "Safety & emergency", sub: "Emergency SOS, medical info, alerts", kw: "sos" },
  { id: "accounts", title: "Passwords & accounts", sub: "Saved passwords, autofill, synced accounts", kw: "account sync" },
  { id: "wellbeing", title: "Digital Wellbeing & parental controls", sub: "Screen time, app timers, bedtime", kw: "screen time" },
  { id: "system", i18n: "system", title: "System", sub: "Languages, gestures, time, backup", icon: "language",
    kw: "language languages locale keyboard gestures date time backup reset" },
  { id: "about", i18n: "about", title: "About phone", sub: "CogPhone", kw: "model build version device name" },
];
const SPECIFIC = new Set(["settings", "settings.network", "settings.display", "settings.system", "settings.languages"]);

const SEARCH_ENTRIES = SETTINGS_MAIN.map(r => ({ title: r.title, i18n: r.i18n, path: "Settings", screen: "settings." + r.id, kw: r.kw }))
  .concat([
    { title: "Wi‑Fi", i18n: "wifi", path: "Network & internet", screen: "settings.network", kw: "wifi wi-fi wlan wireless network" },
    { title: "Airplane mode", i18n: "airplane", path: "Network & internet", screen: "settings.network", kw: "airplane aeroplane flight mode" },
    { title: "Dark theme", i18n: "dark_theme", path: "Display", screen: "settings.display", kw: "dark theme mode night light" },
    { title: "Brightness level", i18n: "brightness", path: "Display", screen: "settings.display", kw: "brightness screen dim" },
    { title: "Languages", i18n: "languages", path: "System", screen: "settings.languages", kw: "language languages locale" },
  ]);

// --- helpers ---------------------------------------------------------------------------------------------
const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));
function t(key, fallback) {
  const table = I18N[S.language] || {};
  return table[key] || fallback;
}
function parentOf(id) {
  if (id === "home") return null;
  if (id === "settings.languages") return "settings.system";
  if (id.startsWith("settings.")) return "settings";
  return "home";
}
function chainTo(id) {
  const chain = [];
  for (let cur = id; cur; cur = parentOf(cur)) chain.unshift(cur);
  return chain;
}
function knownScreen(id) {
  if (SPECIFIC.has(id) || ["home", "browser", "notes", "calculator", "clock", "recents"].includes(id)) return true;
  return id.startsWith("settings.") && SETTINGS_MAIN.some(r => "settings." + r.id === id);
}

// --- building the static parts ---------------------------------------------------------------------------
function build() {
  $("#app-grid").innerHTML = APPS.map(a =>
    `<div class="app" data-app="${a.id}"><span class="app-icon" style="background:${a.color};color:${a.fg}">${ICONS[a.icon]}</span>` +
    `<span class="app-label" data-i18n="${a.i18n}">${a.label}</span></div>`).join("");
  $("#settings-list").innerHTML = SETTINGS_MAIN.map(r =>
    `<div class="row" data-go="settings.${r.id}" id="set-${r.id}"><span class="row-icon">${ICONS[r.icon || "dot"]}</span>` +
    `<span class="row-text"><span class="row-title"${r.i18n ? ` data-i18n="${r.i18n}"` : ""}>${r.title}</span>` +
    `<span class="row-sub">${r.sub}</span></span></div>`).join("");
  $("#language-list").innerHTML = LANGUAGES.map(([code, name]) =>
    `<div class="row lang-row" data-lang="${code}"><span class="radio"></span><span class="row-text"><span class="row-title">${name}</span></span></div>`).join("");
  $$(".row-icon[data-icon]").forEach(el => { el.innerHTML = ICONS[ROW_ICON[el.dataset.icon] || "dot"]; });
  $$(".appbar-back").forEach(el => { el.innerHTML = ICONS.back; });
  $("#sb-wifi").innerHTML = ICONS.wifi;
  $("#sb-airplane").innerHTML = ICONS.airplane;
  $("#sb-signal").innerHTML = ICONS.signal;
  $("#sb-battery").innerHTML = ICONS.battery;
  const keys = ["C", "(", ")", "÷", "7", "8", "9", "×", "4", "5", "6", "−", "1", "2", "3", "+", "0", ".", "⌫", "="];
  $("#calc-keys").innerHTML = keys.map(k =>
    `<div class="calc-key${"÷×−+()C⌫".includes(k) ? " op" : ""}${k === "=" ? " eq" : ""}" data-calc="${k}">${k}</div>`).join("");
}

// --- rendering from state -----------------------------------------------------------------------------------
function render() {
  document.body.classList.toggle("dark", !!S.dark_mode);
  document.body.classList.toggle("on-home", S.current_screen === "home");
  document.documentElement.lang = S.language;
  document.body.setAttribute("dir", S.language.startsWith("ar") ? "rtl" : "ltr");
  $("#sb-time").textContent = S.clock;
  $("#home-time").textContent = S.clock;
  $("#clock-time").textContent = S.clock;
  $("#home-date").textContent = S.date;
  $("#clock-date").textContent = S.date;
  $("#sb-wifi").hidden = !S.wifi;
  $("#sb-airplane").hidden = !S.airplane_mode;
  $("#sb-signal").hidden = !!S.airplane_mode;
  $$(".row.toggle").forEach(row => row.classList.toggle("on", !!S[row.dataset.toggle]));
  $("#wifi-sub").textContent = S.wifi ? "CogNet" : "Off";
  $("#mobile-sub").textContent = S.airplane_mode ? "Airplane mode is on" : "CogTel";
  $("#dark-sub").textContent = S.dark_mode ? "On" : "Off";
  const b = $("#brightness");
  if (Number(b.value) !== S.brightness) b.value = String(S.brightness);
  $("#brightness-value").textContent = S.brightness + "%";
  $$(".lang-row").forEach(row => row.classList.toggle("selected", row.dataset.lang === S.language));
  const lang = LANGUAGES.find(([c]) => c === S.language);
  $("#language-sub").textContent = lang ? lang[1] : S.language;
  $$("[data-i18n]").forEach(el => {
    if (!el.dataset.en) el.dataset.en = el.textContent;
    el.textContent = t(el.dataset.i18n, el.dataset.en);
  });
  $$("[data-i18n-placeholder]").forEach(el => {
    if (!el.dataset.en) el.dataset.en = el.placeholder;
    el.placeholder = t(el.dataset.i18nPlaceholder, el.dataset.en);
  });
  $("#calc-display").textContent = S.calc_display;
  $("#screen-off").hidden = !!S.screen_on;
  renderPage();
  renderRecents();
  renderScreen();
}

function renderScreen() {
  let id = S.current_screen;
  let section = document.querySelector(`.screen[data-screen="${id}"]`);
  if (!section && id.startsWith("settings.")) {
    section = $("#scr-generic");
    const row = SETTINGS_MAIN.find(r => "settings." + r.id === id);
    $("#generic-title").textContent = row ? t(row.i18n, row.title) : id;
    $("#generic-list").innerHTML = row ? row.sub.split(/, | - /).map(s =>
      `<div class="row"><span class="row-icon">${ICONS.dot}</span><span class="row-text"><span class="row-title">${s}</span></span></div>`).join("") : "";
  }
  $$(".screen").forEach(s => s.classList.toggle("active", s === section));
  document.body.classList.toggle("on-home", id === "home");
}

function renderSearch() {
  const q = S.search_query.trim().toLowerCase();
  const results = q ? SEARCH_ENTRIES.filter(e =>
    (t(e.i18n, e.title) + " " + e.title + " " + e.kw + " " + e.path).toLowerCase().includes(q)) : [];
  $("#settings-list").hidden = !!q;
  $("#search-results").hidden = !q || results.length === 0;
  $("#search-empty").hidden = !q || results.length > 0;
  $("#search-results").innerHTML = results.map((e, i) =>
    `<div class="row result" data-go="${e.screen}" data-result="${i}"><span class="row-icon">${ICONS.dot}</span>` +
    `<span class="row-text"><span class="row-title">${t(e.i18n, e.title)}</span><span class="result-path">${e.path}</span></span></div>`).join("");
  return results;
}

function renderPage() {
  const page = $("#page");
  if (!S.browser_url) {
    page.innerHTML = '<h2>New tab</h2><p class="muted">Type a web address above. This phone has no network: pages are simulated.</p>';
  } else {
    let host = S.browser_url;
    try { host = new URL(S.browser_url).host || S.browser_url; } catch (e) { /* keep the raw text */ }
    page.innerHTML = "<h2></h2><p class='muted'>Simulated page for</p><p class='addr'></p>";
    page.querySelector("h2").textContent = host;
    page.querySelector(".addr").textContent = S.browser_url;
  }
  if (document.activeElement !== $("#url")) $("#url").value = S.browser_url;
}

function renderRecents() {
  const box = $("#recent-cards");
  if (!recents.length) { box.innerHTML = '<div class="recents-empty">No recent items</div>'; return; }
  box.innerHTML = recents.map(id => {
    const a = APPS.find(x => x.id === id);
    return `<div class="card" data-app="${id}"><span class="app-icon" style="background:${a.color};color:${a.fg}">${ICONS[a.icon]}</span>${t(a.i18n, a.label)}</div>`;
  }).join("");
}

// --- navigation ------------------------------------------------------------------------------------------------
function show(id, { push = true } = {}) {
  if (!knownScreen(id)) throw new Error("unknown screen " + id);
  closePopup();
  blurField();
  if (push && stack[stack.length - 1] !== id) stack.push(id);
  S.current_screen = id;
  const section = document.querySelector(`.screen[data-screen="${id}"]`) || $("#scr-generic");
  renderScreen();
  const sc = section.querySelector(".scroll");
  if (sc && push) sc.scrollTop = 0;
  const app = APPS.find(a => a.screen === id || (a.id === "settings" && id.startsWith("settings")));
  if (app) { recents = [app.id].concat(recents.filter(r => r !== app.id)); }
}
function openApp(id) {
  const app = APPS.find(a => a.id === id);
  if (!app) throw new Error("no app " + id);
  stack = ["home"];
  show(app.screen);
}
function back() {
  if (!S.screen_on) return "screen off";
  if (popup) { closePopup(); return "closed popup"; }
  if (isField(document.activeElement)) { blurField(); return "hid keyboard"; }
  if (S.current_screen === "settings" && S.search_query) {
    S.search_query = ""; $("#settings-search").value = ""; renderSearch(); return "cleared search";
  }
  if (stack.length <= 1) { stack = ["home"]; show("home", { push: false }); return "home"; }
  stack.pop();
  show(stack[stack.length - 1], { push: false });
  return "back";
}
function home() {
  if (!S.screen_on) return;
  stack = ["home"];
  show("home", { push: false });
}
function appSwitch() {
  if (!S.screen_on) return;
  if (S.current_screen === "recents") { back(); return; }
  show("recents");
}

// --- popups (long press) ---------------------------------------------------------------------------------
function openPopup(name, items, x, y) {
  popup = name;
  const box = $("#popup");
  box.innerHTML = items.map(([label, action]) => `<div class="item" data-popup-action="${action}">${label}</div>`).join("");
  box.hidden = false;
  $("#backdrop").hidden = false;
  const w = 200, h = items.length * 48 + 16;
  box.style.left = Math.max(8, Math.min(window.innerWidth - w - 8, x - w / 2)) + "px";
  box.style.top = Math.max(40, Math.min(window.innerHeight - h - 30, y + 20)) + "px";
  box.style.width = w + "px";
}
function closePopup() {
  popup = null;
  $("#popup").hidden = true;
  $("#backdrop").hidden = true;
}
function onLongPress(target, x, y) {
  const app = target.closest && target.closest(".app");
  if (app && S.current_screen === "home") {
    openPopup("app:" + app.dataset.app, [["App info", "info:" + app.dataset.app], ["Widgets", "widgets"]], x, y);
    return;
  }
  if (S.current_screen === "home" && !target.closest(".home-search")) {
    openPopup("home", [["Wallpaper & style", "go:settings.wallpaper"], ["Home settings", "go:settings.apps"]], x, y);
  }
}
function onPopupAction(action) {
  closePopup();
  if (action.startsWith("info:")) { stack = ["home", "settings"]; show("settings.apps"); }
  else if (action.startsWith("go:")) { stack = ["home", "settings"]; show(action.slice(3)); }
}

// --- fields ----------------------------------------------------------------------------------------------------
function isField(el) { return !!el && (el.tagName === "INPUT" && el.type !== "range" || el.tagName === "TEXTAREA"); }
function blurField() { if (isField(document.activeElement)) document.activeElement.blur(); }

// --- settings with side effects --------------------------------------------------------------------------
function setSetting(key, value) {
  if (key === "airplane_mode") {
    value = !!value;
    if (value && !S.airplane_mode) { wifiBeforeAirplane = S.wifi; S.wifi = false; }
    if (!value && S.airplane_mode) { S.wifi = wifiBeforeAirplane; }
    S.airplane_mode = value;
  } else if (key === "brightness") {
    S.brightness = Math.max(0, Math.min(100, Math.round(Number(value))));
  } else if (key === "language") {
    if (!LANGUAGES.some(([c]) => c === value)) throw new Error("unknown language " + value);
    S.language = value;
  } else if (key === "current_screen") {
    stack = chainTo(value); show(value, { push: false });
  } else if (key === "search_query") {
    S.search_query = String(value); $("#settings-search").value = S.search_query; renderSearch();
  } else if (key === "note_text") {
    S.note_text = String(value); $("#note").value = S.note_text;
  } else if (key === "screen_on") {
    S.screen_on = !!value; if (!S.screen_on) { closePopup(); blurField(); }
  } else if (key === "volume") {
    S.volume = Math.max(0, Math.min(15, Math.round(Number(value))));
  } else if (key in DEFAULTS) {
    S[key] = typeof DEFAULTS[key] === "boolean" ? !!value : value;
  } else {
    throw new Error("unknown setting " + key);
  }
}

// --- calculator ------------------------------------------------------------------------------------------
function calcPress(k) {
  if (k === "C") calcExpr = "";
  else if (k === "⌫") calcExpr = calcExpr.slice(0, -1);
  else if (k === "=") {
    const js = calcExpr.replace(/×/g, "*").replace(/÷/g, "/").replace(/−/g, "-");
    if (/^[0-9+\-*/(). ]+$/.test(js)) {
      try {
        const v = Function('"use strict"; return (' + js + ")")();
        calcExpr = Number.isFinite(v) ? String(Math.round(v * 1e10) / 1e10) : "Error";
      } catch (e) { calcExpr = "Error"; }
    }
  } else calcExpr = (calcExpr === "Error" ? "" : calcExpr) + k;
  S.calc_display = calcExpr || "0";
  $("#calc-display").textContent = S.calc_display;
}

// --- input events ------------------------------------------------------------------------------------------
let press = null;
let suppressClick = false;
let lastScroll = 0;
document.addEventListener("scroll", () => { lastScroll = performance.now(); }, true);
document.addEventListener("pointerdown", (e) => {
  press = { t: performance.now(), x: e.clientX, y: e.clientY, target: e.target, moved: false };
}, true);
document.addEventListener("pointermove", (e) => {
  if (press && Math.hypot(e.clientX - press.x, e.clientY - press.y) > 12) press.moved = true;
}, true);
document.addEventListener("pointercancel", () => { press = null; }, true);
document.addEventListener("pointerup", (e) => {
  if (press && !press.moved && performance.now() - press.t >= 500) {
    suppressClick = true;
    setTimeout(() => { suppressClick = false; }, 400);
    onLongPress(press.target, press.x, press.y);
  }
  press = null;
}, true);
document.addEventListener("contextmenu", (e) => e.preventDefault(), true);

document.addEventListener("click", (e) => {
  if (suppressClick) { suppressClick = false; e.stopPropagation(); e.preventDefault(); return; }
  if (!S.screen_on) return;
  const el = e.target;
  if (el.closest("#backdrop")) { closePopup(); return; }
  const pa = el.closest("[data-popup-action]");
  if (pa) { onPopupAction(pa.dataset.popupAction); return; }
  const act = el.closest("[data-action]");
  if (act && act.dataset.action === "back") { back(); return; }
  const app = el.closest("[data-app]");
  if (app) { openApp(app.dataset.app); return; }
  const toggle = el.closest(".row.toggle");
  if (toggle) { setSetting(toggle.dataset.toggle, !S[toggle.dataset.toggle]); render(); return; }
  const go = el.closest("[data-go]");
  if (go) { show(go.dataset.go); return; }
  const lang = el.closest("[data-lang]");
  if (lang) { setSetting("language", lang.dataset.lang); render(); return; }
  const ck = el.closest("[data-calc]");
  if (ck) { calcPress(ck.dataset.calc); return; }
  if (el.closest("#clear-all")) { recents = []; home(); return; }
});

function wireFields() {
  $("#settings-search").addEventListener("input", (e) => { S.search_query = e.target.value; renderSearch(); });
  $("#settings-search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      const results = renderSearch();
      if (results.length) show(results[0].screen);
    }
  });
  $("#note").addEventListener("input", (e) => { S.note_text = e.target.value; });
  $("#url").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      let v = e.target.value.trim();
      if (v && !/^[a-z][a-z0-9+.-]*:/i.test(v)) v = "https://" + v;
      S.browser_url = v; e.target.blur(); renderPage();
    }
  });
  $("#brightness").addEventListener("input", (e) => { S.brightness = Number(e.target.value); $("#brightness-value").textContent = S.brightness + "%"; });
}

// --- the simulator's handle ----------------------------------------------------------------------------
window.phone = {
  state() {
    return Object.assign({}, S, {
      popup, recents: recents.slice(),
      focused: isField(document.activeElement) ? (document.activeElement.id || document.activeElement.tagName.toLowerCase()) : null,
      history: stack.slice(),
      scroll_top: (() => { const s = document.querySelector(".screen.active .scroll"); return s ? Math.round(s.scrollTop) : 0; })(),
    });
  },
  reset(state) {
    const st = state || {};
    for (const k of Object.keys(st)) {
      if (!(k in DEFAULTS)) throw new Error("unknown state key " + k + "; known: " + Object.keys(DEFAULTS).join(", "));
    }
    Object.assign(S, DEFAULTS);
    closePopup(); blurField();
    recents = []; calcExpr = ""; wifiBeforeAirplane = true;
    const airplane = st.airplane_mode;
    for (const [k, v] of Object.entries(st)) if (k !== "current_screen" && k !== "airplane_mode") setSetting(k, v);
    if (airplane) { wifiBeforeAirplane = S.wifi; S.airplane_mode = true; if (!("wifi" in st)) S.wifi = false; }
    calcExpr = S.calc_display === "0" ? "" : S.calc_display;
    $("#settings-search").value = S.search_query; renderSearch();
    $("#note").value = S.note_text;
    $$(".scroll").forEach(s => { s.scrollTop = 0; });
    const screen = st.current_screen || "home";
    if (!knownScreen(screen)) throw new Error("unknown screen " + screen);
    stack = chainTo(screen);
    S.current_screen = screen;
    render();
    return this.state();
  },
  set(patch) {
    for (const [k, v] of Object.entries(patch)) setSetting(k, v);
    render();
    return this.state();
  },
  home() { home(); return S.current_screen; },
  back() { return back(); },
  appSwitch() { appSwitch(); return S.current_screen; },
  openApp(id) { if (S.screen_on) openApp(id); return S.current_screen; },
  openScreen(id) { if (S.screen_on) { stack = chainTo(id); show(id, { push: false }); } return S.current_screen; },
  openUrl(url) {
    if (!S.screen_on) return S.current_screen;
    S.browser_url = url; stack = ["home"]; show("browser"); renderPage(); return S.current_screen;
  },
  power(on) { setSetting("screen_on", on === undefined ? !S.screen_on : on); render(); return S.screen_on; },
  volume(delta) { setSetting("volume", S.volume + delta); return S.volume; },
  insertText(text) {  // what an input method's commitText does
    const el = document.activeElement;
    if (!isField(el)) return false;
    const start = el.selectionStart ?? el.value.length, end = el.selectionEnd ?? el.value.length;
    el.setRangeText(el.tagName === "TEXTAREA" ? text : text.replace(/\n/g, ""), start, end, "end");
    el.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  },
  focusedField() { return isField(document.activeElement) ? document.activeElement.id || "field" : null; },
  scrollIdleMs() { return performance.now() - lastScroll; },
  languages: LANGUAGES,
  screens() { return ["home", "settings", ...SETTINGS_MAIN.map(r => "settings." + r.id), "settings.languages", "browser", "notes", "calculator", "clock", "recents"]; },
};

build();
wireFields();
render();
