/* 小蓝搜索的固定页面库（为本演示站点编写）。 */
window.ZH_PAGES = [
  { id: "beijing-weather", title: "北京天气预报：未来七天晴转多云", text: "今天白天晴，最高气温 26 度，夜间多云，明天有小雨，请带好雨具。" },
  { id: "shanghai-weather", title: "上海天气预报：本周多雨", text: "受冷空气影响，上海本周以阴雨天气为主，气温略有下降。" },
  { id: "rail-timetable", title: "高铁时刻表查询", text: "输入出发站和到达站，即可查询当天的高铁车次与余票。" },
  { id: "recipe", title: "家常菜谱：番茄炒蛋的做法", text: "准备两个番茄、三个鸡蛋，十分钟就能做好的快手菜。" }
];
window.searchZh = function (q) {
  q = q.replace(/\s+/g, "");
  if (!q) return [];
  return ZH_PAGES.filter(function (p) { return (p.title + p.text).indexOf(q) >= 0; });
};
