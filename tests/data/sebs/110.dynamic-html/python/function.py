"""Render an HTML page from a Jinja2 template: a greeting, the time, random numbers."""

import os
import random
from datetime import datetime

from jinja2 import Template

HERE = os.path.dirname(os.path.abspath(__file__))


def handler(event):
    count = event.get("random_len")
    numbers = random.sample(range(1000000), count)
    with open(os.path.join(HERE, "templates", "template.html")) as source:
        template = Template(source.read())
    page = template.render(
        username=event.get("username"), cur_time=datetime.now(), random_numbers=numbers
    )
    return {"result": page}
