using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    // <fcntl.h> on Linux. O_DIRECTORY and O_NOFOLLOW are the flags that differ by architecture (arm keeps the old values).
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 0x1;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_NOCTTY = 0x100;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;
    static readonly bool IsArm = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;
    public static readonly int O_DIRECTORY = IsArm ? 0x4000 : 0x10000;
    public static readonly int O_NOFOLLOW = IsArm ? 0x8000 : 0x20000;
    const int AT_REMOVEDIR = 0x200;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdirat(int dirfd, string path, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint fdopendir(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readdir(nint dir);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int closedir(nint dir);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>open(2) with O_CLOEXEC, retrying EINTR; throws <see cref="SystemCallException"/>.</summary>
    public static FileDescriptor Open(string path, int flags = O_RDONLY, int mode = 0)
    {
        int fd;
        do
            fd = open(path, flags | O_CLOEXEC, mode);
        while (fd < 0 && ErrnoInfo.Last == Errno.EINTR);
        return fd < 0 ? throw SystemCallException.FromLast($"open {path}") : new FileDescriptor(fd);
    }

    /// <summary>openat(2) with O_CLOEXEC relative to a directory fd; null with the errno on failure.</summary>
    public static FileDescriptor? TryOpenAt(FileDescriptor directory, string name, int flags, int mode, out Errno errno)
    {
        int fd;
        do
            fd = openat(directory.Value, name, flags | O_CLOEXEC, mode);
        while (fd < 0 && ErrnoInfo.Last == Errno.EINTR);
        errno = fd < 0 ? ErrnoInfo.Last : Errno.None;
        return fd < 0 ? null : new FileDescriptor(fd);
    }

    public static Errno MakeDirectoryAt(FileDescriptor directory, string name, int mode) =>
        mkdirat(directory.Value, name, mode) == 0 ? Errno.None : ErrnoInfo.Last;

    /// <summary>unlinkat(2): a file, or with <paramref name="directory"/> an empty folder; returns the errno.</summary>
    public static Errno UnlinkAt(FileDescriptor parent, string name, bool directory = false) =>
        unlinkat(parent.Value, name, directory ? AT_REMOVEDIR : 0) == 0 ? Errno.None : ErrnoInfo.Last;

    public static Errno RenameAt(FileDescriptor fromDirectory, string from, FileDescriptor toDirectory, string to) =>
        renameat(fromDirectory.Value, from, toDirectory.Value, to) == 0 ? Errno.None : ErrnoInfo.Last;

    /// <summary>linkat(2): a second name for a file, failing with EEXIST when the new name exists as anything.</summary>
    public static Errno LinkAt(FileDescriptor fromDirectory, string from, FileDescriptor toDirectory, string to) =>
        linkat(fromDirectory.Value, from, toDirectory.Value, to, 0) == 0 ? Errno.None : ErrnoInfo.Last;

    /// <summary>read(2) retrying EINTR.</summary>
    public static int Read(FileDescriptor fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = read(fd.Value, p, (nuint)buffer.Length);
                if (n >= 0)
                    return (int)n;
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw SystemCallException.FromLast("read");
            }
        }
    }

    /// <summary>
    /// One write(2) of the whole buffer, retrying EINTR. A regular file takes it whole (or fails); a short write is
    /// reported, never continued: on an O_APPEND file a second write could land after another process's line.
    /// </summary>
    public static void WriteOnce(FileDescriptor fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = write(fd.Value, p, (nuint)buffer.Length);
                if (n == buffer.Length)
                    return;
                if (n >= 0)
                    throw new SystemCallException("write (short)", Errno.ENOSPC);
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw SystemCallException.FromLast("write");
            }
        }
    }

    /// <summary>The names in a directory (without "." and ".."), read through a duplicate of its fd.</summary>
    public static List<string> ListDirectory(FileDescriptor directory)
    {
        // fdopendir takes the fd it is given; readdir needs a descriptor opened for reading at offset 0.
        var names = new List<string>();
        var reader = TryOpenAt(directory, ".", O_RDONLY | O_DIRECTORY, 0, out var errno)
            ?? throw new SystemCallException("open directory", errno);
        int fd = reader.Value;
        reader.SetHandleAsInvalid(); // owned by the DIR* from here on
        nint dir = fdopendir(fd);
        if (dir == 0)
        {
            var error = SystemCallException.FromLast("fdopendir");
            close(fd);
            throw error;
        }
        try
        {
            while (readdir(dir) is var entry and not 0)
            {
                // struct dirent (64-bit glibc): d_ino u64, d_off i64, d_reclen u16, d_type u8, then d_name.
                string name = Marshal.PtrToStringUTF8(entry + 19) ?? "";
                if (name is not ("." or ".."))
                    names.Add(name);
            }
        }
        finally
        {
            closedir(dir);
        }
        return names;
    }
}
