namespace IpvlanCni.Interop;

/// <summary>A path the plugin refused to create or write through, and why ("is a symbolic link").</summary>
public sealed class UnsafePathException(string path, string reason) : IOException($"{path} {reason}")
{
    public string PathText { get; } = path;
    public string Reason { get; } = reason;
}

/// <summary>
/// An open directory that files are created, read, renamed and deleted in by name (openat, renameat, unlinkat),
/// never through a path string: a symlink planted anywhere below it is not followed, and a name cannot climb out.
/// Names must be single components; callers derive them from parsed types.
/// </summary>
public sealed class DirectoryHandle : IDisposable
{
    const int DirectoryFlags = Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK;
    const int PrivateMode = 0b111_000_000; // 0700

    readonly FileDescriptor _fd;

    DirectoryHandle(FileDescriptor fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    /// <summary>For messages only.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens an absolute directory, creating the missing part (mode 0700 unless <paramref name="mode"/>). The
    /// ancestors that exist are the admin's and are resolved as the kernel does; every folder this creates, and the
    /// directory itself, is opened with O_NOFOLLOW: a symlink there (or a file) is refused, not followed.
    /// </summary>
    public static DirectoryHandle OpenOrCreate(string absolutePath, int mode = PrivateMode)
    {
        var parts = absolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (absolutePath.Length == 0 || absolutePath[0] != '/' || parts.Any(p => p is "." or ".."))
            throw new UnsafePathException(absolutePath, "is not an absolute path without '.' and '..' components");
        var current = new DirectoryHandle(Libc.Open("/", DirectoryFlags | Libc.O_DIRECTORY), "/");
        bool created = false;
        try
        {
            for (int i = 0; i < parts.Length; i++)
            {
                bool last = i == parts.Length - 1;
                var next = current.OpenChild(parts[i], create: true, followSymlink: !created && !last, mode, out created);
                current.Dispose();
                current = next!;
            }
            return current;
        }
        catch
        {
            current.Dispose();
            throw;
        }
    }

    /// <summary>A sub-folder, created when absent and <paramref name="create"/>; null when absent and not created.</summary>
    public DirectoryHandle? OpenChild(string name, bool create, int mode = PrivateMode) => OpenChild(name, create, followSymlink: false, mode, out _);

    DirectoryHandle? OpenChild(string name, bool create, bool followSymlink, int mode, out bool created)
    {
        created = false;
        string path = Join(name);
        int flags = DirectoryFlags | Libc.O_DIRECTORY | (followSymlink ? 0 : Libc.O_NOFOLLOW);
        for (int attempt = 0; ; attempt++)
        {
            var fd = Libc.TryOpenAt(_fd, name, flags, 0, out var errno);
            if (fd is not null)
                return new DirectoryHandle(fd, path);
            if (errno == Errno.ENOENT && create && attempt < 2)
            {
                var made = Libc.MakeDirectoryAt(_fd, name, mode);
                if (made is Errno.None)
                    created = true;
                else if (made is not Errno.EEXIST)
                    throw new UnsafePathException(path, $"cannot be created: {ErrnoInfo.Describe((int)made)}");
                continue;
            }
            if (errno == Errno.ENOENT)
                return null;
            throw errno switch
            {
                Errno.ELOOP => new UnsafePathException(path, "is a symbolic link"),
                Errno.ENOTDIR => new UnsafePathException(path, "is not a directory"),
                _ => new UnsafePathException(path, $"cannot be opened: {ErrnoInfo.Describe((int)errno)}"),
            };
        }
    }

    /// <summary>
    /// The bytes of a regular file, at most <paramref name="maxBytes"/>; null when there is no such file, or it is a
    /// symlink, a FIFO, a device or a folder (nothing we wrote), or larger than the cap.
    /// </summary>
    public byte[]? TryReadFile(string name, int maxBytes)
    {
        using var fd = Libc.TryOpenAt(_fd, name, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_NOCTTY, 0, out _);
        return fd is null ? null : RegularFile.ReadRegular(fd, maxBytes, out _);
    }

    /// <summary>
    /// Writes <paramref name="bytes"/> to <paramref name="temporaryName"/> in <paramref name="temporaries"/> (created
    /// exclusively: a planted file or symlink there fails the write) and renames it over <paramref name="name"/>:
    /// readers see the old content or the new, never half, and never a file someone else linked in.
    /// </summary>
    public void WriteAtomically(string name, ReadOnlySpan<byte> bytes, DirectoryHandle temporaries, string temporaryName,
        int mode = 0b110_000_000, bool sync = false)
    {
        temporaries.WriteTemporary(temporaryName, bytes, mode, sync);
        var renamed = Libc.RenameAt(temporaries._fd, temporaryName, _fd, name);
        if (renamed != Errno.None)
        {
            temporaries.DeleteFile(temporaryName);
            throw new UnsafePathException(Join(name), $"cannot be replaced: {ErrnoInfo.Describe((int)renamed)}");
        }
    }

    /// <summary>
    /// Creates <paramref name="name"/> holding <paramref name="bytes"/>, whole or not at all, never replacing anything:
    /// written to <paramref name="temporaryName"/> in this folder, then linked into place (linkat fails on any existing
    /// entry, a dangling symlink included). False when the name was taken.
    /// </summary>
    public bool TryCreateWhole(string name, ReadOnlySpan<byte> bytes, string temporaryName, int mode, bool sync)
    {
        WriteTemporary(temporaryName, bytes, mode, sync);
        try
        {
            var linked = Libc.LinkAt(_fd, temporaryName, _fd, name);
            return linked switch
            {
                Errno.None => true,
                Errno.EEXIST => false,
                _ => throw new UnsafePathException(Join(name), $"cannot be created: {ErrnoInfo.Describe((int)linked)}"),
            };
        }
        finally
        {
            DeleteFile(temporaryName);
        }
    }

    void WriteTemporary(string temporaryName, ReadOnlySpan<byte> bytes, int mode, bool sync)
    {
        DeleteFile(temporaryName);
        using var fd = Libc.TryOpenAt(_fd, temporaryName, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW, mode, out var errno)
            ?? throw new UnsafePathException(Join(temporaryName), $"cannot be created: {ErrnoInfo.Describe((int)errno)}");
        Libc.WriteOnce(fd, bytes);
        if (sync)
            Libc.Fsync(fd, Join(temporaryName));
    }

    /// <summary>Whether an entry of any kind (a dangling symlink too) has this name.</summary>
    public bool Exists(string name)
    {
        using var fd = Libc.TryOpenAt(_fd, name, Libc.O_PATH | Libc.O_NOFOLLOW, 0, out var errno);
        return fd is not null || errno != Errno.ENOENT;
    }

    /// <summary>Creates an empty file; false when the name exists already (as anything).</summary>
    public bool TryCreateFile(string name)
    {
        using var fd = Libc.TryOpenAt(_fd, name, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW, 0b110_000_000, out var errno);
        if (fd is not null)
            return true;
        return errno == Errno.EEXIST ? false : throw new UnsafePathException(Join(name), $"cannot be created: {ErrnoInfo.Describe((int)errno)}");
    }

    /// <summary>Opens (creating, never following a symlink) a regular file for flock.</summary>
    public FileDescriptor OpenLockFile(string name, int mode = 0b110_000_000) =>
        OpenRegular(name, Libc.O_RDONLY | Libc.O_CREAT, mode);

    /// <summary>The identity of the entry itself (a symlink's own, never its target's); null when absent.</summary>
    public FileStatus? TryStat(string name)
    {
        using var fd = Libc.TryOpenAt(_fd, name, Libc.O_PATH | Libc.O_NOFOLLOW, 0, out _);
        return fd is null ? null : Libc.Stat(fd);
    }

    /// <summary>Opens a file for appending (created 0600 when absent); refuses a symlink and anything but a regular file.</summary>
    public FileDescriptor OpenForAppend(string name) =>
        OpenRegular(name, Libc.O_WRONLY | Libc.O_APPEND | Libc.O_CREAT | Libc.O_NOCTTY, 0b110_000_000);

    /// <summary>openat without following a symlink or waiting (O_NONBLOCK), then only a regular file is kept.</summary>
    FileDescriptor OpenRegular(string name, int flags, int mode)
    {
        var fd = Libc.TryOpenAt(_fd, name, flags | Libc.O_NOFOLLOW | Libc.O_NONBLOCK, mode, out var errno)
            ?? throw (errno == Errno.ELOOP
                ? new UnsafePathException(Join(name), "is a symbolic link")
                : new UnsafePathException(Join(name), $"cannot be opened: {ErrnoInfo.Describe((int)errno)}"));
        if (Libc.Stat(fd).Type != Libc.S_IFREG)
        {
            fd.Dispose();
            throw new UnsafePathException(Join(name), "is not a regular file");
        }
        return fd;
    }

    /// <summary>unlinkat: removes the entry itself (a symlink, never its target); false when it was absent.</summary>
    public bool DeleteFile(string name)
    {
        var errno = Libc.UnlinkAt(_fd, name);
        return errno switch
        {
            Errno.None => true,
            Errno.ENOENT => false,
            _ => throw new UnsafePathException(Join(name), $"cannot be removed: {ErrnoInfo.Describe((int)errno)}"),
        };
    }

    /// <summary>Removes an empty sub-folder; false when absent or not empty.</summary>
    public bool TryDeleteDirectory(string name) => Libc.UnlinkAt(_fd, name, directory: true) == Errno.None;

    public List<string> ListNames() => Libc.ListDirectory(_fd);

    public void Dispose() => _fd.Dispose();

    string Join(string name) => Path.EndsWith('/') ? Path + name : $"{Path}/{name}";
}
