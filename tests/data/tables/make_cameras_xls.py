"""Make tests/data/tables/cameras.xls (xlwt 1.3.0)."""
import datetime as dt

import xlwt

book = xlwt.Workbook(encoding="utf-8")
notes = book.add_sheet("说明")
notes.write(0, 0, "坐标为WGS-84")
ws = book.add_sheet("点位")
ws.write(0, 0, "视频监控点位台账（示例）")
for j, h in enumerate(["序号", "设备编号", "经度", "纬度", "朝向", "视角", "可视距离",
                       "安装高度", "状态", "建设日期"]):
    ws.write(1, j, h)
date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
rows = [(1, "XLS001", 112.964555, 28.019038, 45, 60, 80, 6, "在线"),
        (2, "XLS002", 112.941213, 28.00251, 180.5, 90, 120, 8.5, "规划")]
for i, row in enumerate(rows):
    for j, v in enumerate(row):
        ws.write(2 + i, j, v)
    ws.write(2 + i, 9, dt.date(2024, 3, 1 + i), date)
book.save("tests/data/tables/cameras.xls")
