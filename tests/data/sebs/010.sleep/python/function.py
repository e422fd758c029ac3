"""faaslab's re-creation of SeBS's 010.sleep in Python (not SeBS's file)."""

from time import sleep


def handler(event):
    sleep_time = event.get("sleep")
    sleep(sleep_time)
    return {"result": sleep_time}
