<?php
declare(strict_types=1);

namespace App;

final class UserRepository
{
    private array $users = [1 => 'ann'];

    public function find(int $id): ?object
    {
        return isset($this->users[$id]) ? (object) ['name' => $this->users[$id]] : null;
    }
}
