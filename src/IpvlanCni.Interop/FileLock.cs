using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IpvlanCni.Interop;

/// <summary>A failed lock-file system call, with the operation and errno.</summary>
public sealed class FileLockException(string operation, string path, int errno)
    : IOException($"{operation} {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
{
    public string Operation { get; } = operation;
    public int Errno { get; } = errno;
}

/// <summary>
/// Whole-file advisory locks (flock), the lock the reference host-local takes on its store. We open the file ourselves:
/// .NET's FileStream takes a non-blocking flock of its own on open, which fails while another process holds ours.
/// </summary>
public static partial class FileLock
{
    /// <summary>Opens (creating with <paramref name="createMode"/> if needed) a lock file read-only; never follows a symlink.</summary>
    public static SafeFileHandle Open(string path, UnixFileMode createMode)
    {
        int fd;
        do
            fd = Native.open(path, Native.O_RDONLY | Native.O_CREAT | Native.O_NOFOLLOW | Native.O_CLOEXEC, (uint)createMode);
        while (fd < 0 && Marshal.GetLastPInvokeError() == Native.EINTR);
        if (fd < 0)
            throw new FileLockException("open", path, Marshal.GetLastPInvokeError());
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Blocks until this process holds the exclusive lock; dispose to release it.</summary>
    public static IDisposable Acquire(SafeFileHandle file)
    {
        Lock(file, Native.LOCK_EX, "flock(LOCK_EX)");
        return new Held(file);
    }

    static void Lock(SafeFileHandle file, int operation, string name)
    {
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            int rc;
            do
                rc = Native.flock((int)file.DangerousGetHandle(), operation);
            while (rc < 0 && Marshal.GetLastPInvokeError() == Native.EINTR);
            if (rc < 0)
                throw new FileLockException(name, $"fd {file.DangerousGetHandle()}", Marshal.GetLastPInvokeError());
        }
        finally
        {
            if (added)
                file.DangerousRelease();
        }
    }

    sealed class Held(SafeFileHandle file) : IDisposable
    {
        bool _released;

        public void Dispose()
        {
            if (_released || file.IsClosed)
                return;
            _released = true;
            Lock(file, Native.LOCK_UN, "flock(LOCK_UN)");
        }
    }

    static partial class Native
    {
        // <fcntl.h> and <sys/file.h> on Linux; O_NOFOLLOW is the one flag here that differs by architecture.
        public const int O_RDONLY = 0x0;
        public const int O_CREAT = 0x40;
        public static readonly int O_NOFOLLOW =
            RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;
        public const int O_CLOEXEC = 0x80000;
        public const int LOCK_EX = 2;
        public const int LOCK_UN = 8;
        public const int EINTR = 4;

        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int open(string path, int flags, uint mode);

        [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
        public static partial int flock(int fd, int operation);
    }
}
