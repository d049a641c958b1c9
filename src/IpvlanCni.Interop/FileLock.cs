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

    sealed class Held(FileDescriptor file) : IDisposable
    {
        // Closing the descriptor releases the flock; this is the last reference to it.
        public void Dispose() => file.Dispose();
    }
}
