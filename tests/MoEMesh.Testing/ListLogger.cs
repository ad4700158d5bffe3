using Microsoft.Extensions.Logging;

namespace MoEMesh.Testing;

/// <summary>A logger that keeps every formatted line, for asserting on what a component logs.</summary>
public sealed class ListLogger : ILogger
{
    private readonly List<(LogLevel Level, string Message)> _lines = [];

    /// <summary>Lines logged so far.</summary>
    public IReadOnlyList<(LogLevel Level, string Message)> Lines
    {
        get
        {
            lock (_lines) return _lines.ToArray();
        }
    }

    /// <inheritdoc />
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    /// <inheritdoc />
    public bool IsEnabled(LogLevel logLevel) => true;

    /// <inheritdoc />
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
    }
}

/// <summary>Hands one <see cref="ListLogger"/> to every category, for asserting on what a host logs.</summary>
public sealed class ListLoggerProvider : ILoggerProvider
{
    /// <summary>Where every category's lines go.</summary>
    public ListLogger Logger { get; } = new();

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => Logger;

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
