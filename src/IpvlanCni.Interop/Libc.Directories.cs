using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    const int W_OK = 2, X_OK = 1;
    const int LOCK_EX = 2, LOCK_NB = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    /// <summary>
    /// The kernel's own answer to "may this process create and rename files in <paramref name="path"/>": access(2)
    /// with W_OK|X_OK, which sees permission bits, root's override and a read-only mount (EROFS) alike.
    /// </summary>
    public static Errno CanModifyDirectory(string path) => access(path, W_OK | X_OK) == 0 ? Errno.None : ErrnoInfo.Last;

    /// <summary>A directory opened read-only: for fsync after a rename in it, and as the object of a lock.</summary>
    public static FileDescriptor OpenDirectory(string path) => Open(path, O_RDONLY | O_DIRECTORY);

    /// <summary>
    /// Takes an exclusive flock on <paramref name="fd"/> within <paramref name="timeout"/> (LOCK_NB, polled with a
    /// pause growing to 16 ms: never an unbounded wait); false when another process still holds it then. Released
    /// when the descriptor closes.
    /// </summary>
    public static bool TryLockExclusive(FileDescriptor fd, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int pause = 1;
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            while (true)
            {
                if (flock(fd.Value, LOCK_EX | LOCK_NB) == 0)
                    return true;
                var errno = ErrnoInfo.Last;
                if (errno != Errno.EAGAIN && errno != Errno.EINTR)
                    throw new SystemCallException("flock", errno);
                if (errno == Errno.EINTR)
                    continue;
                if (clock.Elapsed >= timeout)
                    return false;
                Thread.Sleep(pause);
                pause = Math.Min(pause * 2, 16);
            }
        }
        finally
        {
            if (added)
                fd.DangerousRelease();
        }
    }

    /// <summary>fsync(2): the data (or, for a directory, its entries: a rename) reaches the disk before we go on.</summary>
    public static void Fsync(FileDescriptor fd, string what)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            if (fsync(fd.Value) != 0)
                throw SystemCallException.FromLast($"fsync {what}");
        }
        finally
        {
            if (added)
                fd.DangerousRelease();
        }
    }
}
