using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>What fstat says of a file: its identity (st_dev, st_ino), type (S_IFMT bits of st_mode) and size.</summary>
public readonly record struct FileStatus(ulong Device, ulong Inode, int Type, long Size);

public static unsafe partial class Libc
{
    /// <summary>include/uapi/linux/magic.h: the file system of /proc/*/ns/* and their bind mounts.</summary>
    public const long NSFS_MAGIC = 0x6e736673;

    // struct stat and struct statfs differ between architectures past their first fields; we read only those
    // (st_dev, st_ino: two u64 at 0 and 8; f_type: a long at 0 on x86_64 and aarch64) from an oversized buffer.
    const int StatBufferSize = 256;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, byte* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstatfs(int fd, byte* buf);

    /// <summary>
    /// fstat(2), the one wrapper. st_mode is at 24 on x86_64 (after an 8-byte st_nlink) and at 16 on the generic
    /// layout (aarch64); st_size is at 48 on both. An O_PATH descriptor is enough.
    /// </summary>
    public static FileStatus Stat(FileDescriptor fd)
    {
        byte* buf = stackalloc byte[StatBufferSize];
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            if (fstat(fd.Value, buf) != 0)
                throw SystemCallException.FromLast("fstat");
            int modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
            return new FileStatus(*(ulong*)buf, *(ulong*)(buf + 8), *(int*)(buf + modeOffset) & S_IFMT, *(long*)(buf + 48));
        }
        finally { fd.DangerousRelease(); }
    }

    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFLNK = 0xA000;
    public const int S_IFSOCK = 0xC000;

    /// <summary>
    /// The file type of <paramref name="path"/> itself (a symlink is S_IFLNK, not its target), or null when absent.
    /// O_PATH opens nothing: a FIFO or a device is typed, not waited on.
    /// </summary>
    public static int? TryGetFileType(string path)
    {
        FileDescriptor fd;
        try
        {
            fd = Open(path, O_PATH | O_NOFOLLOW);
        }
        catch (SystemCallException e) when (e.Errno is Errno.ENOENT)
        {
            return null;
        }
        using (fd)
            return Stat(fd).Type;
    }

    /// <summary>statfs f_type of the file system holding fd.</summary>
    public static long GetFileSystemType(FileDescriptor fd)
    {
        byte* buf = stackalloc byte[StatBufferSize];
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            if (fstatfs(fd.Value, buf) != 0)
                throw SystemCallException.FromLast("fstatfs");
            return *(long*)buf;
        }
        finally { fd.DangerousRelease(); }
    }
}
