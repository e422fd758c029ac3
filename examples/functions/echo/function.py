def handler(event):
    return {"echo": event}
