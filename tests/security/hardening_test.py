"""The programs are linked as docs/SECURITY.md says: position independent,
full RELRO (every symbol bound at start, the table then read-only), and a
stack that is not executable. Read from the ELF headers themselves, so the
test needs no binutils."""
import os
import struct
import unittest

PT_DYNAMIC, PT_GNU_STACK, PT_GNU_RELRO = 2, 0x6474E551, 0x6474E552
DT_FLAGS, DT_FLAGS_1 = 30, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
ET_DYN = 3
PF_X = 1


def elf_facts(path):
    """(type, program headers [(type, flags, offset, filesz)], dynamic {tag: value})
    of a little-endian ELF64 file."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path}: not ELF64 LE"
    e_type, = struct.unpack_from("<H", data, 16)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    headers = []
    for i in range(e_phnum):
        p_type, p_flags, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize)
        headers.append((p_type, p_flags, p_offset, p_filesz))
    dynamic = {}
    for p_type, _, offset, size in headers:
        if p_type != PT_DYNAMIC:
            continue
        for at in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == 0:
                break
            dynamic[tag] = value
    return e_type, headers, dynamic


class HardeningTest(unittest.TestCase):

    def programs(self):
        names = ("LOTTERY_SERVER", "LOTTERY_AGENCY", "LOTTERY_CTL")
        return [os.environ[n] for n in names]

    def test_each_program_is_pie_with_full_relro_and_no_executable_stack(self):
        for path in self.programs():
            with self.subTest(program=os.path.basename(path)):
                e_type, headers, dynamic = elf_facts(path)
                types = {h[0]: h for h in headers}
                self.assertEqual(e_type, ET_DYN, "not position independent")
                self.assertTrue(dynamic.get(DT_FLAGS_1, 0) & DF_1_PIE, "not PIE")
                self.assertIn(PT_GNU_RELRO, types, "no RELRO segment")
                self.assertTrue(dynamic.get(DT_FLAGS, 0) & DF_BIND_NOW
                                or dynamic.get(DT_FLAGS_1, 0) & DF_1_NOW,
                                "lazy binding: the symbol table stays writable")
                self.assertIn(PT_GNU_STACK, types, "no GNU_STACK header: executable stack")
                self.assertFalse(types[PT_GNU_STACK][1] & PF_X, "executable stack")

    def test_the_reader_sees_a_lazily_bound_program_as_such(self):
        # The check above must be able to fail: a made-up header that binds
        # lazily, has no RELRO and an executable stack reads as such.
        import tempfile
        ehdr = bytearray(64)
        ehdr[:6] = b"\x7fELF\x02\x01"
        struct.pack_into("<HHI", ehdr, 16, ET_DYN, 62, 1)
        struct.pack_into("<Q", ehdr, 32, 64)
        struct.pack_into("<HH", ehdr, 54, 56, 2)
        phdrs = struct.pack("<IIQQQQQQ", PT_DYNAMIC, 6, 176, 0, 0, 32, 32, 8)
        phdrs += struct.pack("<IIQQQQQQ", PT_GNU_STACK, 7, 0, 0, 0, 0, 0, 16)
        dyn = struct.pack("<qQ", DT_FLAGS_1, DF_1_PIE) + struct.pack("<qQ", 0, 0)
        with tempfile.NamedTemporaryFile() as f:
            f.write(bytes(ehdr) + phdrs + dyn)
            f.flush()
            e_type, headers, dynamic = elf_facts(f.name)
        self.assertEqual(e_type, ET_DYN)
        self.assertEqual(dynamic, {DT_FLAGS_1: DF_1_PIE})
        self.assertFalse(dynamic.get(DT_FLAGS_1) & DF_1_NOW)
        self.assertNotIn(PT_GNU_RELRO, [h[0] for h in headers])
        self.assertTrue([h for h in headers if h[0] == PT_GNU_STACK][0][1] & PF_X)


if __name__ == "__main__":
    unittest.main()
