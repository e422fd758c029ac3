import time


def handler(event):
    block = bytearray(event.get("mb", 1) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(event.get("hold_s", 0.01))
    return {"bytes": len(block)}
