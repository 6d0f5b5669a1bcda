"""bot/lazy_models.py: aiogram's types are left unbuilt at import and every one of them, and every
method, builds correctly on first use. Run in a fresh interpreter, where `bot` comes first."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json
import bot  # noqa: F401  (installs the hook before anything imports aiogram)
import aiogram.methods as methods
import aiogram.types as types
from aiogram.methods.base import TelegramMethod

deferred = not types.Message.__pydantic_complete__
failures = []
models = [getattr(types, name) for name in types.__all__] + [getattr(methods, name) for name in methods.__all__]
for model in models:
    if hasattr(model, "model_rebuild"):
        try:
            model.model_rebuild(raise_errors=True)
            if not model.__pydantic_complete__:
                failures.append(model.__name__)
        except Exception as error:  # noqa: BLE001 - collected and reported
            failures.append(f"{model.__name__}: {error}")

update = types.Update.model_validate({
    "update_id": 1,
    "callback_query": {
        "id": "7", "chat_instance": "x", "data": "rp:site:3",
        "from": {"id": 5, "is_bot": False, "first_name": "Miner", "language_code": "kk"},
        "message": {
            "message_id": 9, "date": 1700000000, "chat": {"id": 5, "type": "private"},
            "text": "Қадам 2/6", "entities": [{"type": "bold", "offset": 0, "length": 5}],
            "photo": [{"file_id": "A", "file_unique_id": "a", "width": 90, "height": 90}],
            "reply_markup": {"inline_keyboard": [[{"text": "Шахта", "callback_data": "rp:site:3"}]]},
        },
    },
})
sent = methods.SendMessage(chat_id=5, text="ok", reply_markup=update.callback_query.message.reply_markup)
print(json.dumps({"deferred": deferred, "checked": len(models), "failures": failures,
                  "button": sent.reply_markup.inline_keyboard[0][0].callback_data}))
"""


def test_every_aiogram_type_and_method_builds_on_first_use() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["deferred"], "aiogram built its types at import: the hook did not take effect"
    assert outcome["checked"] > 400
    assert outcome["failures"] == []
    assert outcome["button"] == "rp:site:3"
