"""Playing with a musician: the performer that chooses answers (``performer``; its part in
--mode duet, ``along``), the settings of a performance and a session (``config``), the live loop
on the grid (``loop``), a session on real ports with model switching (``session``, ``switch``),
the offline twin (``duet``), thru, controls, the live view and the settings file.

May import every layer below it (``io``, ``timing``, ``music``, ``model``); only the commands
(``livecomp.cli``) import it."""
