using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>
/// The process's stdin or stdout as a plain stream: read(2)/write(2) on fd 0 or 1, which it does not own.
/// Console's streams set up the terminal and start a signal-handling thread on their first write; a FileStream
/// writes a regular file with pwrite at its own offset, which a stdout shared with others must not do.
/// </summary>
public sealed unsafe partial class StandardStream : Stream
{
    const int StandardInput = 0, StandardOutput = 1, StandardError = 2;

    readonly int _fd;

    StandardStream(int fd) => _fd = fd;

    public static StandardStream OpenInput() => new(StandardInput);
    public static StandardStream OpenOutput() => new(StandardOutput);
    /// <summary>For subcommands' messages; the CNI path never writes to stderr.</summary>
    public static StandardStream OpenError() => new(StandardError);

    /// <summary>stdin is a terminal (someone typed the command), not a pipe or file with a configuration.</summary>
    public static bool IsInputTerminal => Native.isatty(StandardInput) == 1;

    public override bool CanRead => _fd == StandardInput;
    public override bool CanWrite => _fd != StandardInput;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!CanRead)
            throw new NotSupportedException("stdout is write-only");
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint read = Native.read(_fd, p, (nuint)buffer.Length);
                if (read >= 0)
                    return (int)read;
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw new IOException($"read stdin: {ErrnoInfo.Describe((int)ErrnoInfo.Last)}");
            }
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!CanWrite)
            throw new NotSupportedException("stdin is read-only");
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint written = Native.write(_fd, p + done, (nuint)(buffer.Length - done));
                if (written >= 0)
                    done += (int)written;
                else if (ErrnoInfo.Last != Errno.EINTR)
                    throw new IOException($"write fd {_fd}: {ErrnoInfo.Describe((int)ErrnoInfo.Last)}");
            }
        }
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    static partial class Native
    {
        [LibraryImport("libc", SetLastError = true)]
        public static partial nint read(int fd, byte* buffer, nuint count);

        [LibraryImport("libc", SetLastError = true)]
        public static partial nint write(int fd, byte* buffer, nuint count);

        [LibraryImport("libc")]
        public static partial int isatty(int fd);
    }
}
