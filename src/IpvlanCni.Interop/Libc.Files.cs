using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>open(2) with O_CLOEXEC; throws <see cref="SystemCallException"/>.</summary>
    public static FileDescriptor Open(string path, int flags = O_RDONLY)
    {
        int fd = open(path, flags | O_CLOEXEC, 0);
        return fd < 0 ? throw SystemCallException.FromLast($"open {path}") : new FileDescriptor(fd);
    }
}
