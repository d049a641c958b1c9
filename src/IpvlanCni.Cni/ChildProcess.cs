using System.Diagnostics;
using System.IO.Pipes;
using IpvlanCni.Interop;

namespace IpvlanCni.Cni;

/// <summary>A child process that outlived its deadline and was killed (with its descendants).</summary>
public sealed class ChildProcessTimeoutException(string command, TimeSpan timeout)
    : Exception($"{command} did not finish within {timeout.TotalSeconds:0.#} s and was killed")
{
    public string Command { get; } = command;
}

/// <summary>
/// The one way the plugin runs another program (delegated IPAM, nft, iptables): an argument list and an exact
/// environment, never a shell; stdin written and stdout/stderr read in one poll loop on this thread (no tasks, no
/// thread pool); and a deadline after which the process tree is killed and <see cref="ChildProcessTimeoutException"/>
/// is thrown. The answer is complete when the program itself has exited: what it wrote is in the pipes then, and is
/// read to their current end. A child it left behind that keeps stdout open (a daemonizing IPAM plugin, like the
/// reference dhcp's) does not hold the call until the deadline.
/// </summary>
public static class ChildProcess
{
    public sealed record Outcome(int ExitCode, byte[] Output, string Error);

    public static Outcome Run(string path, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string>? environment,
        ReadOnlyMemory<byte> stdin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        if (environment is not null)
        {
            start.Environment.Clear();
            foreach (var (key, value) in environment)
                start.Environment[key] = value;
        }

        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.Start();
        string command = Path.GetFileName(path) + (arguments.Count > 0 ? " " + string.Join(' ', arguments) : "");
        int Left() => timeout - clock.Elapsed is var left && left > TimeSpan.Zero ? (int)Math.Ceiling(left.TotalMilliseconds) : 0;
        using var exit = Libc.TryOpenProcess(process.Id);

        var output = new Pipe(process.StandardOutput, process.StandardOutput.BaseStream);
        var error = new Pipe(process.StandardError, process.StandardError.BaseStream);
        var input = new Pipe(process.StandardInput, process.StandardInput.BaseStream);
        int written = 0;
        if (stdin.IsEmpty)
            input.Close();
        bool exited = false;
        Span<pollfd> fds = stackalloc pollfd[4];
        var buffer = new byte[16 * 1024];
        while (true)
        {
            if (exited)
            {
                // Everything the program wrote is in the pipes: read to their current end, not to EOF.
                output.Drain(buffer);
                error.Drain(buffer);
                break;
            }
            int left = Left();
            if (left == 0)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // It exited between the deadline and the kill.
                }
                process.WaitForExit(1000);
                throw new ChildProcessTimeoutException(command, timeout);
            }
            int count = 0;
            int outIndex = output.Watch(fds, ref count, Libc.POLLIN);
            int errIndex = error.Watch(fds, ref count, Libc.POLLIN);
            int inIndex = input.Watch(fds, ref count, Libc.POLLOUT);
            int exitIndex = -1;
            if (exit is not null)
            {
                exitIndex = count;
                fds[count++] = new pollfd { fd = exit.Value, events = Libc.POLLIN };
            }
            // Without a pidfd (before Linux 5.3) the exit is noticed within 10 ms by asking.
            Libc.Poll(fds[..count], exit is null ? Math.Min(left, 10) : left);
            if (outIndex >= 0 && fds[outIndex].revents != 0)
                output.Drain(buffer);
            if (errIndex >= 0 && fds[errIndex].revents != 0)
                error.Drain(buffer);
            if (inIndex >= 0 && fds[inIndex].revents != 0)
                written = input.Feed(stdin.Span, written);
            exited = exitIndex >= 0 ? fds[exitIndex].revents != 0 : process.HasExited;
        }
        input.Close();
        output.Close(); // a descendant that still holds the write ends gets EPIPE, not our wait
        error.Close();
        process.WaitForExit(); // the program has exited: this only collects its status
        return new Outcome(process.ExitCode, output.Bytes(), System.Text.Encoding.UTF8.GetString(error.Bytes()).Trim());
    }

    /// <summary>One of the child's standard streams, read or written through its descriptor, never blocking.</summary>
    sealed class Pipe
    {
        readonly IDisposable _owner;
        readonly int _fd;
        readonly MemoryStream _received = new();
        bool _open = true;

        /// <param name="owner">The reader or writer Process wraps the stream in: closing it closes the pipe.</param>
        public Pipe(IDisposable owner, Stream stream)
        {
            _owner = owner;
            // Process hands its pipes out as AnonymousPipeClientStream over the descriptor.
            _fd = (int)((PipeStream)stream).SafePipeHandle.DangerousGetHandle();
            Libc.SetNonBlocking(_fd);
        }

        /// <summary>Adds the descriptor to the poll set while it is open; its index there, or -1.</summary>
        public int Watch(Span<pollfd> fds, ref int count, short events)
        {
            if (!_open)
                return -1;
            fds[count] = new pollfd { fd = _fd, events = events };
            return count++;
        }

        /// <summary>Reads what is there now; closes at end of file.</summary>
        public void Drain(byte[] buffer)
        {
            while (_open)
            {
                int n = Libc.ReadNonBlocking(_fd, buffer);
                if (n < 0)
                    return;
                if (n == 0)
                {
                    Close();
                    return;
                }
                _received.Write(buffer, 0, n);
            }
        }

        /// <summary>Writes what the pipe takes now from <paramref name="offset"/>; closes once all is written or the reader left.</summary>
        public int Feed(ReadOnlySpan<byte> data, int offset)
        {
            try
            {
                while (_open && offset < data.Length)
                {
                    int n = Libc.WriteNonBlocking(_fd, data[offset..]);
                    if (n < 0)
                        return offset;
                    offset += n;
                }
            }
            catch (SystemCallException e) when (e.Errno == Errno.EPIPE)
            {
                // The program exited without reading stdin; its exit status and output tell why.
            }
            Close();
            return offset;
        }

        public void Close()
        {
            if (!_open)
                return;
            _open = false;
            _owner.Dispose();
        }

        public byte[] Bytes() => _received.ToArray();
    }
}
