"""Customer names and addresses, made up by faker, one meter at a time.

Faker with its default weighting costs ~100 us per name, so a million customers would take
minutes: nothing is generated at start. One Faker instance is reused and re-seeded per meter
(`seed_instance`), so a customer depends only on (seed, meter, locale, faker version) and not
on which customers were asked for before. `use_weighting=False` makes it ~10x cheaper.
"""

from __future__ import annotations

from typing import Any

from .hashing import derive_key


class CustomerDirectory:
    def __init__(self, seed: int, locale: str) -> None:
        self._seed = seed
        self._locale = locale
        self._faker: Any = None

    def _generator(self) -> Any:
        if self._faker is None:
            from faker import Faker  # imported late: it takes ~0.2 s and most runs never need it

            self._faker = Faker(self._locale, use_weighting=False)
        return self._faker

    def customer(self, i: int) -> dict[str, str]:
        fake = self._generator()
        fake.seed_instance(derive_key(self._seed, "customer", i))
        name = fake.name()
        # A street address, not faker's address(), which also yields military APO/FPO boxes
        # that no utility serves.
        try:  # US-style locales: states only, no territories
            region = fake.state_abbr(include_territories=False, include_freely_associated_states=False) + " "
        except (AttributeError, TypeError):
            region = ""
        street = ", ".join(fake.street_address().splitlines())
        address = f"{street}, {fake.city()}, {region}{fake.postcode()}"
        return {"name": name, "address": address}
