namespace IpvlanCni.Interop;

/// <summary>
/// Whole-file advisory locks (flock), the lock the reference host-local takes on its store: on a descriptor the
/// caller opened (through a <see cref="DirectoryHandle"/>, never following a symlink). .NET's FileStream would take a
/// non-blocking flock of its own on open, which fails while another process holds ours.
/// </summary>
public static class FileLock
{
    /// <summary>
    /// Waits at most <paramref name="timeout"/> for the exclusive lock (<see cref="Libc.TryLockExclusive"/>: no thread,
    /// no signal); null when the deadline passed first. Disposing the result closes the descriptor, which releases it.
    /// </summary>
    public static IDisposable? TryAcquire(FileDescriptor file, TimeSpan timeout) =>
        Libc.TryLockExclusive(file, timeout) ? new Held(file) : null;

    /// <summary>
    /// The exclusive lock of a file that exists only while someone holds it (one per attachment: they must not pile
    /// up). Waits at most <paramref name="timeout"/>; null when the deadline passed first. The holder removes the name
    /// before it closes, so a waiter that then gets the lock of the removed file sees the name gone or naming another
    /// file, and starts over on the name. A holder killed leaves the file, whose next holder removes it.
    /// </summary>
    public static IDisposable? TryAcquireRemovable(DirectoryHandle folder, string name, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var file = folder.OpenLockFile(name);
            var left = timeout - clock.Elapsed;
            if (!Libc.TryLockExclusive(file, left > TimeSpan.Zero ? left : TimeSpan.Zero))
            {
                file.Dispose();
                return null;
            }
            var locked = Libc.Stat(file);
            if (folder.TryStat(name) is { } named && (named.Device, named.Inode) == (locked.Device, locked.Inode))
                return new HeldRemovable(folder, name, file);
            file.Dispose();
        }
    }

    sealed class HeldRemovable(DirectoryHandle folder, string name, FileDescriptor file) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                folder.DeleteFile(name);
            }
            finally
            {
                file.Dispose();
            }
        }
    }

    sealed class Held(FileDescriptor file) : IDisposable
    {
        // Closing the descriptor releases the flock; this is the last reference to it.
        public void Dispose() => file.Dispose();
    }
}
