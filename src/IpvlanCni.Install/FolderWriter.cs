using IpvlanCni.Interop;

namespace IpvlanCni.Install;

/// <summary>
/// Changes the files of one <see cref="InstallFolder"/> so that no reader ever sees half of one: each new file is
/// written under a temporary name in the same folder, synced, closed and renamed over the old name. A kubelet that
/// execs the name gets the old file or the new one, whole; a process still running the old one keeps its inode
/// (rename replaces the folder entry, not the file). Holds an exclusive flock on the folder meanwhile, so two
/// installers never share a temporary.
/// </summary>
public sealed class FolderWriter : IDisposable
{
    static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    readonly InstallFolder _folder;
    readonly FileDescriptor _directory;
    bool _changed;

    FolderWriter(InstallFolder folder, FileDescriptor directory) => (_folder, _directory) = (folder, directory);

    public static FolderWriter Lock(InstallFolder folder)
    {
        var directory = Guard(folder.FullPath, () => Libc.OpenDirectory(folder.FullPath));
        bool locked = false;
        try
        {
            locked = Guard(folder.FullPath, () => Libc.TryLockExclusive(directory, LockTimeout));
        }
        finally
        {
            if (!locked)
                directory.Dispose();
        }
        return locked
            ? new FolderWriter(folder, directory)
            : throw new InstallException(InstallProblem.Failed,
                $"{folder.Option} {folder.FullPath}: another ipvlan-cni install or uninstall still holds it after {LockTimeout.TotalSeconds:0} s");
    }

    public string PathOf(FileName name) => _folder.PathOf(name);

    /// <summary>The name exists as anything, a dangling symlink included.</summary>
    public bool Exists(FileName name)
    {
        var info = new FileInfo(PathOf(name));
        return info.Exists || info.LinkTarget is not null;
    }

    /// <summary>A regular file (not a symlink) with exactly this content and mode.</summary>
    public bool HasFile(FileName name, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        var info = new FileInfo(PathOf(name));
        if (!info.Exists || info.LinkTarget is not null || info.UnixFileMode != mode || info.Length != content.Length)
            return false;
        return Guard(info.FullName, () => File.ReadAllBytes(info.FullName)).AsSpan().SequenceEqual(content);
    }

    public bool HasSymlink(FileName name, string target) => new FileInfo(PathOf(name)).LinkTarget == target;

    public void ReplaceFile(FileName name, byte[] content, UnixFileMode mode) => Replace(name, temporary =>
    {
        using var stream = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, // O_EXCL: never through a symlink someone planted under the temporary name
            Access = FileAccess.Write,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        stream.Write(content);
        File.SetUnixFileMode(stream.SafeFileHandle, mode); // fchmod: the create mode passes through the umask
        stream.Flush(flushToDisk: true); // fsync: the data is on disk before a name points at it
        // Closed before the rename: exec of a file that a process holds open for writing fails with ETXTBSY.
    });

    public void ReplaceSymlink(FileName name, string target) =>
        Replace(name, temporary => File.CreateSymbolicLink(temporary, target));

    /// <summary>Removes the name (a symlink itself, never what it points at); false when there was none.</summary>
    public bool Remove(FileName name)
    {
        if (!Exists(name))
            return false;
        string path = PathOf(name);
        if (Directory.Exists(path) && new FileInfo(path).LinkTarget is null)
            throw new InstallException(InstallProblem.Failed, $"{path}: a folder, not a file this package installs; not removed");
        Guard(path, () => File.Delete(path));
        _changed = true;
        return true;
    }

    void Replace(FileName name, Action<string> writeTemporary)
    {
        string path = PathOf(name);
        string temporary = Path.Join(_folder.FullPath, $".{name}.install");
        Guard(path, () =>
        {
            File.Delete(temporary); // a crashed install's; ours alone, since we hold the folder's lock
            try
            {
                writeTemporary(temporary);
                File.Move(temporary, path, overwrite: true); // rename(2)
            }
            catch
            {
                File.Delete(temporary);
                throw;
            }
        });
        _changed = true;
    }

    public void Dispose()
    {
        try
        {
            // The renames themselves are folder entries: sync them too, or a crash could bring back the old names.
            if (_changed)
                Guard(_folder.FullPath, () => Libc.Fsync(_directory, _folder.FullPath));
        }
        finally
        {
            _directory.Dispose();
        }
    }

    static void Guard(string path, Action action) => Guard(path, () => { action(); return 0; });

    /// <summary>A failed file operation becomes a refusal that names the file.</summary>
    static T Guard<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SystemCallException)
        {
            throw new InstallException(InstallProblem.Failed, $"{path}: {e.Message}", e);
        }
    }
}
