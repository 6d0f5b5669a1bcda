import pytest

from bot.receipts import (
    CASE_CODE_ALPHABET,
    RECEIPT_ALPHABET,
    hash_receipt,
    new_case_code,
    new_receipt,
    normalize_case_code,
    normalize_receipt,
    receipt_matches,
    split_code_and_receipt,
)


def test_case_code_shape() -> None:
    code = new_case_code()
    assert code.startswith("MV-") and len(code) == 8
    assert all(ch in CASE_CODE_ALPHABET for ch in code[3:])


def test_receipt_has_at_least_80_bits_and_reads_in_groups() -> None:
    receipt = new_receipt()
    groups = receipt.split("-")
    assert [len(group) for group in groups] == [4, 4, 4, 4]
    assert len(RECEIPT_ALPHABET) ** 16 >= 2**80
    assert len({new_receipt() for _ in range(200)}) == 200


def test_typing_is_forgiven() -> None:
    assert normalize_case_code(" mv 7k3q9 ") == "MV-7K3Q9"
    assert normalize_case_code("7K3Q9") == "MV-7K3Q9"
    assert normalize_case_code("MV-7K3Q") is None
    assert normalize_receipt("7k3q 9xhf 2m4t 8pra") == "7K3Q-9XHF-2M4T-8PRA"
    assert normalize_receipt("OIL0-0000-0000-0000") == "0110-0000-0000-0000"
    assert normalize_receipt("7K3Q-9XHF") is None


@pytest.mark.parametrize(
    "text",
    ["MV-7K3Q9 7K3Q-9XHF-2M4T-8PRA", "7K3Q-9XHF-2M4T-8PRA\nmv-7k3q9", "7K3Q9 7k3q 9xhf 2m4t 8pra"],
)
def test_code_and_receipt_in_one_message(text: str) -> None:
    assert split_code_and_receipt(text) == ("MV-7K3Q9", "7K3Q-9XHF-2M4T-8PRA")


def test_only_one_of_them() -> None:
    assert split_code_and_receipt("MV-7K3Q9") == ("MV-7K3Q9", None)
    assert split_code_and_receipt("7K3Q-9XHF-2M4T-8PRA") == (None, "7K3Q-9XHF-2M4T-8PRA")
    assert split_code_and_receipt("hello") == (None, None)


def test_hash_is_salted_and_verifies() -> None:
    receipt = new_receipt()
    first, second = hash_receipt(receipt), hash_receipt(receipt)
    assert first != second and receipt not in first
    assert first.startswith("scrypt$")
    assert receipt_matches(receipt, first) and receipt_matches(receipt, second)
    assert not receipt_matches(new_receipt(), first)
