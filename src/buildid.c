/* ELF build-ids: the NT_GNU_BUILD_ID note of a mapped file, which tells whether a file
 * on another machine is the same build (its mtime rarely is). The parser is pure and
 * bounds-checked: the bytes come from any file a process maps, or from an image. */
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "buildid.h"

#define NOTE_READ 4096

static bool in_range(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

int buildid_from_notes(const uint8_t *p, size_t len, uint8_t *id, size_t *id_len)
{
	size_t at = 0;

	while (in_range(len, at, sizeof(Elf64_Nhdr))) {
		Elf64_Nhdr nh;
		uint64_t name_sz, desc_sz, desc_at;

		memcpy(&nh, p + at, sizeof(nh));
		name_sz = (nh.n_namesz + 3) & ~3ULL;
		desc_sz = (nh.n_descsz + 3) & ~3ULL;
		desc_at = at + sizeof(nh) + name_sz;
		if (!in_range(len, at + sizeof(nh), name_sz) || !in_range(len, desc_at, desc_sz))
			return 0;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp(p + at + sizeof(nh), "GNU", 4) && nh.n_descsz &&
		    nh.n_descsz <= BUILDID_MAX) {
			memcpy(id, p + desc_at, nh.n_descsz);
			*id_len = nh.n_descsz;
			return 1;
		}
		at = desc_at + desc_sz;
	}
	return 0;
}

int buildid_phdrs(const uint8_t *head, size_t len, struct buildid_note *notes, int max)
{
	const Elf64_Ehdr *eh = (const void *)head;
	int n = 0;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !in_range(len, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return 0;
	for (unsigned i = 0; i < eh->e_phnum && n < max; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, head + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE || !ph.p_filesz)
			continue;
		notes[n].off = ph.p_offset;
		notes[n].size = ph.p_filesz < NOTE_READ ? ph.p_filesz : NOTE_READ;
		n++;
	}
	return n;
}

int buildid_of_fd(int fd, uint8_t *id, size_t *id_len)
{
	uint8_t head[NOTE_READ], note[NOTE_READ];
	struct buildid_note notes[8];
	ssize_t got = pread(fd, head, sizeof(head), 0);
	int n = got > 0 ? buildid_phdrs(head, got, notes, 8) : 0;

	for (int i = 0; i < n; i++) {
		got = pread(fd, note, notes[i].size, notes[i].off);
		if (got > 0 && buildid_from_notes(note, got, id, id_len))
			return 1;
	}
	return 0;
}
