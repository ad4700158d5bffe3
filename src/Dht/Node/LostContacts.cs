using MoEMesh.Dht.Ids;

namespace MoEMesh.Dht.Node;

/// <summary>
/// Contacts that failed and left the routing table, kept for a while and tried again a few at a time, so
/// a node whose peers were cut off (a partition, its own network gone) finds them again when the link is
/// back, even when each side's routing table still holds its own half and no lookup would ever cross.
/// Bounded: the most recent <c>capacity</c> losses, each kept for <c>retention</c> after it was lost.
/// Not thread-safe: the owning node serialises access.
/// </summary>
internal sealed class LostContacts(int capacity, TimeSpan retention)
{
    private readonly Dictionary<NodeId, (DhtContact Contact, DateTimeOffset LostAt, long Tried)> _lost = [];
    private long _round;

    public int Count => _lost.Count;

    /// <summary>Remembers that <paramref name="contact"/> failed; the oldest loss makes room when full.</summary>
    public void Add(DhtContact contact, DateTimeOffset now)
    {
        if (_lost.TryGetValue(contact.Id, out var known))
        {
            // Failing again, on a retry or otherwise, does not make it newly lost: it is kept for the retention from its first loss.
            _lost[contact.Id] = known with { Contact = contact };
            return;
        }
        if (_lost.Count >= capacity) _lost.Remove(_lost.MinBy(l => l.Value.LostAt).Key);
        _lost[contact.Id] = (contact, now, 0);
    }

    /// <summary>The contact answered again (it is back in the table).</summary>
    public void Remove(NodeId id) => _lost.Remove(id);

    /// <summary>
    /// Up to <paramref name="count"/> contacts to try now, those tried least recently first; forgets those
    /// lost longer than the retention ago.
    /// </summary>
    public List<DhtContact> Next(DateTimeOffset now, int count)
    {
        foreach (var id in _lost.Where(l => now - l.Value.LostAt > retention).Select(l => l.Key).ToList()) _lost.Remove(id);
        _round++;
        var next = _lost.OrderBy(l => l.Value.Tried).ThenBy(l => l.Value.LostAt).Take(count).ToList();
        foreach (var (id, entry) in next) _lost[id] = entry with { Tried = _round };
        return next.Select(l => l.Value.Contact).ToList();
    }
}
