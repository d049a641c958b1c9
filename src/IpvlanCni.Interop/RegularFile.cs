namespace IpvlanCni.Interop;

/// <summary>
/// Files a configuration names (resolvConf, logFile, TLS files, a conflist): typed before they are opened for I/O,
/// and read with a cap. The path is opened O_PATH first, which never blocks and reads nothing (not on a FIFO, not on
/// a device); fstat must say regular file; only then is the same inode reopened through /proc/self/fd for reading
/// or appending. The one bounded reader of the code base is <see cref="ReadRegular"/>.
/// </summary>
public static class RegularFile
{
    /// <summary>The reference reads at most this much of a file a configuration names (and so do we, of any).</summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>
    /// The content of the regular file at <paramref name="path"/> (symlinks followed: /etc/resolv.conf often is one),
    /// at most <paramref name="maxBytes"/>. Throws <see cref="UnsafePathException"/> for anything but a regular file
    /// or a file over the cap, <see cref="SystemCallException"/> when it cannot be opened (ENOENT, EACCES).
    /// </summary>
    public static byte[] Read(string path, int maxBytes = MaxBytes)
    {
        using var fd = OpenTyped(path, Libc.O_PATH, Libc.O_RDONLY | Libc.O_NOCTTY);
        return ReadRegular(fd, maxBytes, out string problem) ?? throw new UnsafePathException(path, problem);
    }

    /// <summary>
    /// Opens the regular file at <paramref name="path"/> for appending, creating it (<paramref name="mode"/>) when
    /// absent; never through a symlink. Throws <see cref="UnsafePathException"/> for a symlink or anything but a
    /// regular file, <see cref="SystemCallException"/> for other failures.
    /// </summary>
    public static FileDescriptor OpenForAppend(string path, int mode)
    {
        const int Append = Libc.O_WRONLY | Libc.O_APPEND | Libc.O_NOCTTY;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return OpenTyped(path, Libc.O_PATH | Libc.O_NOFOLLOW, Append);
            }
            catch (SystemCallException e) when (e.Errno == Errno.ENOENT && attempt == 0)
            {
            }
            // Absent: O_EXCL makes a new regular file, or fails when someone made anything there meanwhile.
            try
            {
                return Libc.Open(path, Append | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_NONBLOCK, mode);
            }
            catch (SystemCallException e) when (e.Errno == Errno.EEXIST && attempt == 0)
            {
            }
        }
    }

    static FileDescriptor OpenTyped(string path, int probeFlags, int flags)
    {
        // With O_NOFOLLOW an O_PATH open of a symlink succeeds and names the link itself (S_IFLNK).
        using var probe = Libc.Open(path, probeFlags);
        {
            int type = Libc.Stat(probe).Type;
            if (type != Libc.S_IFREG)
                throw new UnsafePathException(path, type == Libc.S_IFLNK ? "is a symbolic link" : "is not a regular file");
            // The same inode, whatever the path names by now.
            return Libc.Open($"/proc/self/fd/{probe.Value}", flags);
        }
    }

    /// <summary>Reads an fd that must be a regular file of at most maxBytes; null (and why) otherwise.</summary>
    public static byte[]? ReadRegular(FileDescriptor fd, int maxBytes, out string problem)
    {
        var (_, _, type, size) = Libc.Stat(fd);
        if (type != Libc.S_IFREG)
        {
            problem = "is not a regular file";
            return null;
        }
        if (size > maxBytes)
        {
            problem = $"is larger than {maxBytes} bytes";
            return null;
        }
        // The size can change under us (procfs reports 0): read to one byte past the cap, whatever stat said.
        var buffer = new byte[Math.Max((int)size, 256) + 1];
        int total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                if (buffer.Length > maxBytes)
                {
                    problem = $"is larger than {maxBytes} bytes";
                    return null;
                }
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, maxBytes + 1));
            }
            int n = Libc.Read(fd, buffer.AsSpan(total));
            if (n == 0)
                break;
            total += n;
        }
        problem = "";
        return total == buffer.Length ? buffer : buffer[..total];
    }
}
