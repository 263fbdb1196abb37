"""The command palette (ctrl+p): every action of the key table, by name."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .bindings import KEYS


class TrainingCommands(Provider):
    """One command per key in tui.bindings, so nothing is reachable by key only."""

    def _commands(self):
        keymap = getattr(self.app, "_keymap", {}) or {}
        for spec in KEYS:
            if spec.action in ("leave_input", "interrupt"):
                continue  # meaningless from the palette, which has taken the focus; q's twin
            keys = keymap.get(spec.id, spec.key).replace("question_mark", "?")
            yield spec.description, f"{spec.help} ({keys})", spec.action

    def _runner(self, action: str):
        async def run() -> None:
            await self.app.run_palette_action(action)
        return run

    async def discover(self) -> Hits:
        for name, help_text, action in self._commands():
            yield DiscoveryHit(name, self._runner(action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._commands():
            score = max(matcher.match(name), matcher.match(help_text) * 0.8)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._runner(action), help=help_text)
