using System.Net.Sockets;
using System.Runtime.InteropServices;
using IpvlanCni.Cni;

namespace IpvlanCni.Agent;

/// <summary>What bounds the agent: every limit is here, and each one is a flag.</summary>
public sealed record AgentOptions
{
    public string SocketPath { get; init; } = AgentProtocol.DefaultSocketPath;
    public string LeaseDirectory { get; init; } = LeaseStore.DefaultDirectory;
    /// <summary>null: stdout (the journal under systemd).</summary>
    public string? LogFile { get; init; }
    /// <summary>Connections served at once; one more is told to try again and closed (each holds a descriptor and a thread).</summary>
    public int MaxConnections { get; init; } = 64;
    /// <summary>Leases held at once (each is a few hundred bytes and, while it talks, one socket).</summary>
    public int MaxLeases { get; init; } = 4096;
    /// <summary>A request must arrive and be answered within this.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>
/// The agent's socket: accepts connections, reads one bounded request line under a deadline, hands it to the service
/// it names, writes one line back. Connections beyond the limit are answered "try again" at once, not queued.
/// </summary>
public sealed class AgentServer : IDisposable
{
    readonly AgentOptions _options;
    readonly AgentLog _log;
    readonly Dictionary<string, IAgentService> _services;
    readonly SemaphoreSlim _slots;
    readonly Socket _listener;
    int _inFlight;

    public AgentServer(AgentOptions options, AgentLog log, IReadOnlyList<IAgentService> services)
    {
        _options = options;
        _log = log;
        _services = services.ToDictionary(s => s.Name);
        _slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        _listener = Listen(options.SocketPath);
    }

    /// <summary>Binds the socket; a live agent on the path is an error, a stale socket file from a dead one is replaced.</summary>
    static Socket Listen(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Only a stale socket is ours to replace: a file, a symlink or anything else at the path is refused.
        if (IpvlanCni.Interop.Libc.TryGetFileType(path) is { } type && type != IpvlanCni.Interop.Libc.S_IFSOCK)
            throw new InvalidOperationException($"{path} exists and is not a socket; refusing to replace it");
        if (File.Exists(path))
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"another agent is listening on {path}");
            }
            catch (SocketException)
            {
                File.Delete(path);
            }
        }
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            // Only root (the runtime that runs the plugin) may ask for leases.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(128);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Serves until <paramref name="stop"/>, then waits (bounded) for requests in flight.</summary>
    public void Run(CancellationToken stop)
    {
        _log.Write($"agent listening on {_options.SocketPath} (pid {Environment.ProcessId}; services {string.Join(", ", _services.Keys)}; at most {_options.MaxConnections} connections)");
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = _listener.AcceptAsync(stop).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e)
            {
                // EMFILE and the like: back off instead of spinning.
                _log.Write($"agent accept failed: {e.Message}");
                stop.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(100));
                continue;
            }
            if (!_slots.Wait(0))
            {
                Refuse(connection);
                continue;
            }
            Interlocked.Increment(ref _inFlight);
            // A thread per request in flight, bounded by the slots (requests block on DHCP exchanges, not on CPU).
            // Threads are kept when their request ends and take the next: starting one per request cost a
            // measurable part of every cluster ADD under a virtualised kernel. A request goes to an idle thread it
            // claimed, or to a new one, never behind a busy one.
            if (!ClaimIdleWorker())
                new Thread(() => Work(stop)) { IsBackground = true, Name = "agent-connection" }.Start();
            _work.Add(connection);
        }
        _work.CompleteAdding();
        var drain = DateTime.UtcNow + _options.RequestTimeout;
        while (Volatile.Read(ref _inFlight) > 0 && DateTime.UtcNow < drain)
            Thread.Sleep(50);
    }

    /// <summary>Accepted requests for the worker threads (never disposed: a worker may still be leaving its wait).</summary>
    readonly System.Collections.Concurrent.BlockingCollection<Socket> _work = new();
    /// <summary>Worker threads waiting for a request and not yet claimed by one.</summary>
    int _idleWorkers;

    bool ClaimIdleWorker()
    {
        for (int idle = Volatile.Read(ref _idleWorkers); idle > 0; idle = Volatile.Read(ref _idleWorkers))
            if (Interlocked.CompareExchange(ref _idleWorkers, idle - 1, idle) == idle)
                return true;
        return false;
    }

    /// <summary>Serves requests one after another until the server stops taking them.</summary>
    void Work(CancellationToken stop)
    {
        foreach (var connection in _work.GetConsumingEnumerable())
        {
            try
            {
                Serve(connection, stop);
            }
            finally
            {
                // Idle before the slot is free: the next request then finds this thread instead of starting one.
                Interlocked.Increment(ref _idleWorkers);
                Interlocked.Decrement(ref _inFlight);
                _slots.Release();
            }
        }
    }

    void Refuse(Socket connection)
    {
        using (connection)
        {
            try
            {
                connection.SendTimeout = 1000;
                connection.Send(AgentProtocol.Failure(CniErrorCode.TryAgainLater, $"the agent is serving {_options.MaxConnections} requests already; try again"));
            }
            catch (SocketException)
            {
            }
        }
        _log.Write("agent refused a connection: all slots busy");
    }

    void Serve(Socket connection, CancellationToken stop)
    {
        using var _ = connection;
        var started = DateTimeOffset.UtcNow;
        var deadline = started + _options.RequestTimeout;
        string what = "request";
        byte[] reply;
        try
        {
            var line = ReadLine(connection, deadline);
            var request = AgentRequest.Parse(line);
            what = $"{request} {Describe(request)}";
            if (!_services.TryGetValue(request.Service, out var service))
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"request: unknown service \"{request.Service}\" (this agent runs {string.Join(", ", _services.Keys)})");
            reply = AgentProtocol.Success(service.Handle(request, deadline, stop));
            if (request.Service != "agent")
                _log.Write($"agent {what} ok in {(DateTimeOffset.UtcNow - started).TotalMilliseconds:0} ms");
        }
        catch (CniException e)
        {
            reply = AgentProtocol.Failure(e.Code, e.Message);
            _log.Write($"agent {what} failed in {(DateTimeOffset.UtcNow - started).TotalMilliseconds:0} ms: code {e.Code}: {e.Message}");
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException)
        {
            _log.Write($"agent {what} dropped: {e.Message}");
            return;
        }
        catch (Exception e)
        {
            reply = AgentProtocol.Failure(CniErrorCode.Internal, $"agent: {e.GetType().Name}: {e.Message}");
            _log.Write($"agent {what} failed: {e}");
        }
        try
        {
            connection.SendTimeout = 2000;
            connection.Send(reply);
        }
        catch (SocketException e)
        {
            _log.Write($"agent {what}: the client left before the answer: {e.Message}");
        }
    }

    static string Describe(AgentRequest request)
    {
        string Arg(string name) => request.Args.Kind == System.Text.Json.JsonValueKind.Object && request.Args.TryGetValue(name, out var v)
            && v.Kind == System.Text.Json.JsonValueKind.String ? v.AsString() : "-";
        return request.Service == "agent" ? "" : $"{Arg("network")}/{Arg("containerId")}/{Arg("ifName")}";
    }

    /// <summary>Bytes up to the first newline, at most MaxRequestBytes, before the deadline.</summary>
    static byte[] ReadLine(Socket connection, DateTimeOffset deadline)
    {
        var buffer = new byte[AgentProtocol.MaxRequestBytes];
        int length = 0;
        while (true)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero || !connection.Poll(left, SelectMode.SelectRead))
                throw new TimeoutException("no complete request before the deadline");
            if (length == buffer.Length)
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"request: longer than {AgentProtocol.MaxRequestBytes} bytes");
            int n = connection.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
            if (n == 0)
                throw new IOException("the client closed the connection before a complete request");
            int newline = Array.IndexOf(buffer, (byte)'\n', length, n);
            length += n;
            if (newline >= 0)
                return buffer[..newline];
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        try
        {
            File.Delete(_options.SocketPath);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>`ipvlan-cni agent [--socket PATH] [--lease-dir DIR] [--log-file PATH] [--max-connections N] [--max-leases N]`.</summary>
public static class AgentMain
{
    const string Usage = "usage: ipvlan-cni agent [--socket PATH] [--lease-dir DIR] [--log-file PATH] [--max-connections N] [--max-leases N] [--request-timeout SECONDS]";
    const string Help = """
        Usage: ipvlan-cni agent [OPTION]...

        Run the node agent in the foreground: it serves the plugin's requests on a unix socket (DHCP leases for
        IPAM type ipvlan-cni-dhcp: one client identifier per pod, renewals at T1/T2, RELEASE on DEL) and keeps
        its leases on disk, so a restarted agent resumes renewing them. SIGTERM or SIGINT stops it.

        Options:
          --socket PATH           the socket to listen on (default /run/ipvlan-cni/agent.sock)
          --lease-dir DIR         where leases are kept (default /var/lib/cni/ipvlan-cni-dhcp)
          --log-file PATH         append one line per event here (default: standard output)
          --max-connections N     concurrent requests served (default 64); more get code 11
          --max-leases N          leases held at most (default 4096)
          --request-timeout SECS  deadline of one request (default 20)
          -h, --help              print this help

        """;

    /// <summary><paramref name="more"/>: services of layers above the agent (cluster IPAM), built with its log.</summary>
    public static int Run(ReadOnlySpan<string> args, params Func<AgentLog, IAgentService>[] more)
    {
        if (args is ["-h" or "--help", ..])
        {
            Console.Out.Write(Help);
            return 0;
        }
        AgentOptions options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"ipvlan-cni agent: {e.Message}\n{Usage}");
            return 2;
        }
        using var log = new AgentLog(options.LogFile);
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            log.Write($"agent stopping on {context.Signal}");
            stop.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        var dhcp = new DhcpService(new LeaseStore(options.LeaseDirectory), log, TimeProvider.System, options.MaxLeases);
        var services = new List<IAgentService>();
        services.Add(new AgentSelfService(() => services));
        services.Add(dhcp);
        services.AddRange(more.Select(create => create(log)));
        try
        {
            using var server = new AgentServer(options, log, services);
            foreach (var service in services)
                service.Start();
            server.Run(stop.Token);
        }
        catch (Exception e) when (e is InvalidOperationException or SocketException or IOException or UnauthorizedAccessException)
        {
            log.Write($"agent cannot start: {e.Message}");
            Console.Error.WriteLine($"ipvlan-cni agent: {e.Message}");
            return 1;
        }
        finally
        {
            foreach (var service in services)
                service.Dispose();
        }
        log.Write("agent stopped; leases stay on disk for the next start");
        return 0;
    }

    static AgentOptions Parse(ReadOnlySpan<string> args)
    {
        var options = new AgentOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string flag = args[i];
            if (flag is "-h" or "--help")
                throw new ArgumentException("help");
            if (i + 1 >= args.Length)
                throw new ArgumentException($"{flag} needs a value");
            string value = args[++i];
            options = flag switch
            {
                "--socket" => options with { SocketPath = AbsolutePath(flag, value) },
                "--lease-dir" => options with { LeaseDirectory = AbsolutePath(flag, value) },
                "--log-file" => options with { LogFile = AbsolutePath(flag, value) },
                "--max-connections" => options with { MaxConnections = Number(flag, value, 1, 1024) },
                "--max-leases" => options with { MaxLeases = Number(flag, value, 1, 65536) },
                "--request-timeout" => options with { RequestTimeout = TimeSpan.FromSeconds(Number(flag, value, 1, 600)) },
                _ => throw new ArgumentException($"unknown option {flag}"),
            };
        }
        return options;
    }

    static string AbsolutePath(string flag, string value) =>
        Path.IsPathFullyQualified(value) && !value.Contains('\0') ? value : throw new ArgumentException($"{flag}: \"{value}\" is not an absolute path");

    static int Number(string flag, string value, int min, int max) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n : throw new ArgumentException($"{flag}: \"{value}\" is not a number in {min}..{max}");
}
