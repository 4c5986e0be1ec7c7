<?php
declare(strict_types=1);

namespace App;

final class ProfileController
{
    public function __construct(private UserRepository $users)
    {
    }

    public function show(int $id): string
    {
        return $this->users->find($id)->getName();
    }
}
