#!/usr/bin/env python3
"""Writes agency bet files for the lottery, deterministically from a seed.

Each file holds one bet per line, `first_name,last_name,document,birthdate,number`,
CRLF line ends, RFC 4180 minimal quoting, no header. Names are realistic
Spanish/Argentine names (accents, compound names, a few apostrophes);
documents are 8-digit numbers unique across all agencies of one run;
birthdates fall between 1940-01-01 and 2007-12-31; numbers are uniform in
0..9999 except that every agency gets 1 to 4 bets on the winning number.

The same arguments always give byte-identical files. Rows are streamed, so
memory stays flat whatever the size (5 x 1,000,000 bets is fine).
"""
import argparse
import csv
import datetime
import os
import random
import sys
import tempfile

FIRST_NAMES = """
Agustín Alejandro Alicia Ana Andrés Ángel Antonella Beatriz Benjamín Bruno Camila
Carlos Carolina Catalina Claudia Cristian Daniela David Diego Dolores Eduardo Elena
Emilia Emiliano Enrique Esteban Eugenia Facundo Federico Fernanda Fernando Florencia
Francisco Gabriel Gabriela Gastón Gonzalo Graciela Guadalupe Guillermo Gustavo Héctor
Hernán Horacio Ignacio Inés Isabel Iván Jazmín Joaquín Jorge José Josefina Juan Julián
Julieta Laura Leandro Lautaro Leonardo Lorena Lucas Lucía Luciana Luis Manuel Marcela
Marcelo Marcos María Mariana Martín Martina Matías Mauricio Micaela Miguel Milagros
Mónica Nahuel Natalia Nicolás Noelia Norma Óscar Pablo Patricia Paula Pedro Ramiro
Ramón Raúl Renata Ricardo Roberto Rocío Rodrigo Romina Rubén Santiago Sebastián Sergio
Silvia Sofía Soledad Susana Tomás Valentín Valentina Verónica Victoria Ximena Zoe
""".split()

COMPOUND_FIRST = ["María José", "Juan Pablo", "Ana Laura", "José Luis", "María Florencia",
                  "Juan Cruz", "María Sol", "Luis Ángel", "Santiago Lionel", "Ana Belén"]

LAST_NAMES = """
Acosta Aguirre Alonso Álvarez Benítez Blanco Bustos Cabrera Cáceres Campos Castillo
Castro Córdoba Díaz Domínguez Escobar Espósito Fernández Figueroa Flores Franco Gallardo
García Giménez Gómez González Gutiérrez Herrera Ibáñez Juárez Ledesma Lorca López Luna
Maldonado Martínez Medina Méndez Molina Morales Moreno Muñoz Navarro Núñez Ojeda Ortiz
Pacheco Páez Peralta Pereyra Pérez Ponce Quiroga Ramírez Ramos Ríos Rodríguez Rojas Romero
Ruiz Sáez Salazar Sánchez Sosa Suárez Torres Valdez Vázquez Vega Villalba Zapata Zárate
""".split()

COMPOUND_LAST = ["García Márquez", "Pérez Galdós", "Fernández de Kirchner", "Sáenz Peña",
                 "Ruiz Díaz", "López Obrador", "Martínez Estrada"]

APOSTROPHE_LAST = ["D'Alessandro", "D'Angelo", "O'Higgins", "D'Onofrio"]

DOC_SPACE = 90_000_000           # documents 10,000,000..99,999,999
DOC_STRIDE = 48_271_937          # coprime with DOC_SPACE: a permutation
BIRTH_FIRST = datetime.date(1940, 1, 1).toordinal()
BIRTH_LAST = datetime.date(2007, 12, 31).toordinal()


def document(index: int, offset: int) -> str:
    """The index-th document of a run: unique for index < DOC_SPACE."""
    return str(10_000_000 + (index * DOC_STRIDE + offset) % DOC_SPACE)


def first_name(rng: random.Random) -> str:
    return rng.choice(COMPOUND_FIRST) if rng.random() < 0.08 else rng.choice(FIRST_NAMES)


def last_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.003:
        return rng.choice(APOSTROPHE_LAST)
    if roll < 0.05:
        return rng.choice(COMPOUND_LAST)
    return rng.choice(LAST_NAMES)


def write_agency(path: str, rng: random.Random, bets: int, first_index: int, offset: int,
                 winning: int) -> int:
    winners = min(bets, rng.randint(1, 4))
    winner_rows = set(rng.sample(range(bets), winners)) if bets else set()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gen-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
            for row in range(bets):
                number = winning if row in winner_rows else rng.randrange(10_000)
                while number == winning and row not in winner_rows:
                    number = rng.randrange(10_000)
                birth = datetime.date.fromordinal(rng.randint(BIRTH_FIRST, BIRTH_LAST))
                writer.writerow([first_name(rng), last_name(rng),
                                 document(first_index + row, offset), birth.isoformat(), number])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return winners


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=5, help="number of agencies (default 5)")
    parser.add_argument("--bets", type=int, default=16_000,
                        help="bets per agency (default 16000: 80,000 in all)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--output", default="dataset", help="output directory (default dataset)")
    parser.add_argument("--prefix", default="agency-", help="file prefix (default agency-)")
    parser.add_argument("--winning-number", type=int, default=7574,
                        help="the number every agency gets 1 to 4 bets on (default 7574)")
    args = parser.parse_args()
    if args.agencies < 1:
        parser.error("--agencies must be at least 1")
    if args.bets < 0:
        parser.error("--bets must not be negative")
    if not 0 <= args.winning_number <= 9999:
        parser.error("--winning-number must be 0..9999")
    if args.agencies * args.bets > DOC_SPACE:
        parser.error(f"at most {DOC_SPACE} bets in all (documents are 8 digits)")
    os.makedirs(args.output, exist_ok=True)
    rng = random.Random(args.seed)
    offset = rng.randrange(DOC_SPACE)
    for i in range(1, args.agencies + 1):
        path = os.path.join(args.output, f"{args.prefix}{i}.csv")
        winners = write_agency(path, random.Random(rng.getrandbits(64)), args.bets,
                               (i - 1) * args.bets, offset, args.winning_number)
        print(f"gen_dataset: {path}: {args.bets} bets, {winners} on {args.winning_number}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
