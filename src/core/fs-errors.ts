/**
 * What the machine refused, not a bug in alloy: a full disk, permissions, a read-only
 * filesystem, a file where a folder must be (`.alloy` as a file), limits. Such errors from the
 * filesystem (they carry `syscall` and `path`) used to print "internal error … This is a bug
 * in alloy"; they are E_FS with the path and what to check. ENOENT is left out: a missing
 * file alloy expected is more often a bug than the user's doing.
 */
export const FS_ERRNOS: Record<string, { words: string; hint: string }> = {
  EACCES: { words: 'permission denied', hint: 'check the owner and mode of that path (and of the folders above it)' },
  EPERM: { words: 'operation not permitted', hint: 'check the owner and mode of that path (and of the folders above it)' },
  EROFS: { words: 'the filesystem is read-only', hint: 'run alloy where it can write (or point it elsewhere with -C / --store / --data)' },
  ENOSPC: { words: 'no space left on the device', hint: 'free some space, then run the command again' },
  EDQUOT: { words: 'disk quota exceeded', hint: 'free some space, then run the command again' },
  EFBIG: { words: 'file too large for this process (ulimit -f)', hint: 'raise the file size limit, then run the command again' },
  EMFILE: { words: 'too many open files', hint: 'raise the open-file limit (ulimit -n), then run the command again' },
  ENFILE: { words: 'too many open files on this machine', hint: 'raise the system open-file limit, then run the command again' },
  ENOTDIR: { words: 'a file is where a folder is needed', hint: 'a path on the way is a file (e.g. a file named .alloy): move it away' },
  EISDIR: { words: 'a folder is where a file is needed', hint: 'move that folder away' },
  ELOOP: { words: 'too many symbolic links', hint: 'replace the links on that path' },
  ENAMETOOLONG: { words: 'the path is too long', hint: 'use a shorter path' },
  EIO: { words: 'an input/output error', hint: 'check the disk' },
};
