# Two commands for everything: `make run` and `make test`. Both build .venv from scratch when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PO     := $(wildcard locales/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)

.PHONY: run test i18n translations bench clean

# Exit status 2 means a setting is missing or wrong: the bot has already said what to do,
# so make adds no "Error 2" line after that advice.
run: $(STAMP) translations
	@$(BIN)/python -m bot; status=$$?; [ $$status -eq 2 ] || exit $$status

test: $(STAMP) translations
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

translations: $(MO)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@ -D messages

# Re-extract every string from the code and merge it into the three catalogs.
i18n: $(STAMP)
	$(BIN)/pybabel extract --project=MineVoice --no-wrap --sort-by-file --add-comments=TRANSLATORS: \
		-k _:1,1t -k _:1,2 -k __ -k N_ -o locales/messages.pot bot handlers storage
	$(BIN)/pybabel update --no-wrap --no-fuzzy-matching -i locales/messages.pot -d locales -D messages
	$(BIN)/python -c "from bot.i18n import fill_source_catalog as f; f('locales/en/LC_MESSAGES/messages.po')"
	python3 ../shared/tools/i18n_report.py locales || true

bench: $(STAMP) translations
	$(BIN)/python -m benchmarks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) locales/*/LC_MESSAGES/*.mo
