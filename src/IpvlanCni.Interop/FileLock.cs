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

    /// <summary>
    /// Waits at most <paramref name="timeout"/> for the exclusive lock (flock LOCK_NB, polled with a growing pause up
    /// to 16 ms: no thread, no signal); null when the deadline passed first.
    /// </summary>
    public static IDisposable? TryAcquire(FileDescriptor file, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int pause = 1;
        while (true)
        {
            int rc;
            do
                rc = Native.flock(file.Value, Native.LOCK_EX | Native.LOCK_NB);
            while (rc < 0 && Marshal.GetLastPInvokeError() == Native.EINTR);
            if (rc == 0)
                return new HeldFd(file);
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Native.EWOULDBLOCK)
                throw new FileLockException("flock(LOCK_EX)", $"fd {file.Value}", errno);
            if (clock.Elapsed >= timeout)
                return null;
            Thread.Sleep(pause);
            pause = Math.Min(pause * 2, 16);
        }
    }

    sealed class HeldFd(FileDescriptor file) : IDisposable
    {
        public void Dispose()
        {
            // Closing the descriptor releases the flock; this is the last reference to it.
            file.Dispose();
        }
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
        public const int LOCK_NB = 4;
        public const int EWOULDBLOCK = 11;
        public const int EINTR = 4;

        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int open(string path, int flags, uint mode);

        [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
        public static partial int flock(int fd, int operation);
    }
}
